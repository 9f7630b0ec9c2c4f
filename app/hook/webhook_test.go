package hook

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/oauth"
	"github.com/google/go-cmp/cmp"
)

func TestHookPostsNeedsSignInAndRevokedFromTheEngineHub(t *testing.T) {
	r := newRig(t, status(http.StatusNoContent), func(c *Config) {
		c.Headers = http.Header{"X-Hook-Secret": {"hook-secret-value"}}
	})
	hub := engine.NewHub()
	ch, cancel := hub.Subscribe()
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { r.h.Run(ctx, ch); close(ran) }()
	t.Cleanup(func() { stop(); cancel(); <-ran })

	// Every field an event has is set, so that the document is seen to leave out what it must.
	full := func(kind engine.EventKind, server, msg string) engine.Event {
		return engine.Event{Time: epoch, Kind: kind, Server: server, Trigger: engine.TriggerProxy401,
			Outcome: engine.OutcomeRefused, Scopes: []string{"repo", "offline_access"}, Expiry: epoch.Add(time.Hour),
			Quirks: []oauth.Quirk{"x"}, Message: msg}
	}
	hub.Publish(full(engine.EventWarning, "github", "a warning is not for the hook"))
	hub.Publish(full(engine.EventNeedsSignIn, "github", "the refresh token expired"))
	hub.Publish(full(engine.EventRefreshed, "github", ""))
	hub.Publish(full(engine.EventRevoked, "linear", "the server refused the token"))
	hub.Publish(full(engine.EventAdded, "notion", ""))
	hub.Publish(full(engine.EventNeedsSignIn, "last", ""))

	want := []map[string]any{{
		"event": "needs_sign_in", "server": "github", "time": "2026-03-01T12:00:00Z", "instance": "runner-7",
		"message": "the refresh token expired", "version": 1.0,
		"text": "authkeeper on runner-7: github needs someone to sign in again: the refresh token expired",
	}, {
		"event": "revoked", "server": "linear", "time": "2026-03-01T12:00:00Z", "instance": "runner-7",
		"message": "the server refused the token", "version": 1.0,
		"text": "authkeeper on runner-7: linear refused its token; someone must sign in again: the server refused the token",
	}}
	for i, w := range want {
		got := r.rc.next(t)
		if diff := cmp.Diff(w, got.doc); diff != "" {
			t.Errorf("document %d (-want +got):\n%s", i, diff)
		}
		if ct := got.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if s := got.header.Get("X-Hook-Secret"); s != "hook-secret-value" {
			t.Errorf("X-Hook-Secret %q, want the configured header", s)
		}
	}
	// The warning, refreshed and added events between them fired nothing: the next POST is the last event.
	if got := r.rc.next(t).what(); got != "needs_sign_in last" {
		t.Errorf("next POST %q, want needs_sign_in last (only needs_sign_in, revoked and degraded fire)", got)
	}
}

func TestHookRetriesA5xxWithBackoffAndRetryAfterThenDelivers(t *testing.T) {
	r := newRig(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		switch n {
		case 0:
			w.WriteHeader(http.StatusInternalServerError)
		case 1:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}, nil)
	r.h.Feed(r.event(engine.EventNeedsSignIn, "github", "m"))
	first := r.rc.next(t)
	if got := r.clock.waitPending(t, 1); !cmp.Equal(got, []time.Duration{time.Second}) {
		t.Fatalf("after a 500 the hook waits %v, want [1s]", got)
	}
	r.clock.Advance(time.Second)
	second := r.rc.next(t)
	// The backoff's second step is 2 s; the webhook's Retry-After asks for 7.
	if got := r.clock.waitPending(t, 1); !cmp.Equal(got, []time.Duration{7 * time.Second}) {
		t.Fatalf("after a 503 with Retry-After: 7 the hook waits %v, want [7s]", got)
	}
	r.clock.Advance(7 * time.Second)
	third := r.rc.next(t)
	r.logs.waitFor(t, `INFO hook: delivered the needs_sign_in event for "github" to the webhook at http://127.0.0.1`)
	if !cmp.Equal(first.doc, second.doc) || !cmp.Equal(first.doc, third.doc) {
		t.Errorf("the retries sent other documents: %v, %v, %v", first.doc, second.doc, third.doc)
	}
	if p := r.clock.pending(); len(p) != 0 {
		t.Errorf("timers still armed after delivery: %v", p)
	}
}

func TestHookRetriesOnlyWhatAnotherAttemptCanFix(t *testing.T) {
	for _, tt := range []struct {
		code  int
		retry bool
	}{
		{http.StatusBadRequest, false}, {http.StatusUnauthorized, false}, {http.StatusForbidden, false},
		{http.StatusNotFound, false}, {http.StatusGone, false}, {http.StatusMovedPermanently, false},
		{http.StatusTemporaryRedirect, false},
		{http.StatusRequestTimeout, true}, {http.StatusTooManyRequests, true}, {http.StatusInternalServerError, true},
		{http.StatusBadGateway, true},
	} {
		t.Run(http.StatusText(tt.code), func(t *testing.T) {
			r := newRig(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n > 0 {
					w.WriteHeader(http.StatusOK)
					return
				}
				w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
				w.WriteHeader(tt.code)
			}, nil)
			r.h.Feed(r.event(engine.EventRevoked, "first", ""))
			r.rc.next(t)
			line := r.logs.nextLine(t)
			if retried := strings.Contains(line, "retrying in 1s"); retried != tt.retry {
				t.Fatalf("after %d the hook logged %q; want a retry: %v", tt.code, line, tt.retry)
			}
			if !tt.retry {
				if !strings.Contains(line, "refused the revoked event") {
					t.Errorf("give-up line %q", line)
				}
				if p := r.clock.pending(); len(p) != 0 {
					t.Errorf("a retry is armed after %d: %v", tt.code, p)
				}
				// The hook moved on: the next event is delivered, not the refused one again.
				r.h.Feed(r.event(engine.EventNeedsSignIn, "second", ""))
				if got := r.rc.next(t).what(); got != "needs_sign_in second" {
					t.Errorf("next POST %q, want the next event", got)
				}
			}
		})
	}
}

func TestHookGivesUpAfterItsRetriesAndMovesOn(t *testing.T) {
	r := newRig(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n < 3 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}, func(c *Config) { c.Retries = 2 })
	r.h.Feed(r.event(engine.EventNeedsSignIn, "dead", ""))
	r.rc.next(t)
	for _, d := range []time.Duration{time.Second, 2 * time.Second} {
		if got := r.clock.waitPending(t, 1); !cmp.Equal(got, []time.Duration{d}) {
			t.Fatalf("armed %v, want [%v]", got, d)
		}
		r.clock.Advance(d)
		r.rc.next(t)
	}
	line := r.logs.waitFor(t, "gave up")
	if !strings.HasPrefix(line, `ERROR hook: gave up on the needs_sign_in event for "dead" after 3 attempts`) {
		t.Errorf("give-up line %q", line)
	}
	if p := r.clock.pending(); len(p) != 0 {
		t.Errorf("a retry is armed after the last attempt: %v", p)
	}
	r.h.Feed(r.event(engine.EventRevoked, "alive", ""))
	if got := r.rc.next(t).what(); got != "revoked alive" {
		t.Errorf("next POST %q, want the next event", got)
	}
}

func TestHookFeedNeverBlocksWhileTheWebhookHangsAndDropsTheOldest(t *testing.T) {
	release := make(chan struct{})
	r := newRig(t, func(n int, w http.ResponseWriter, req *http.Request) {
		if n == 0 {
			select { // hang, as a dead webhook does, until the test lets go
			case <-release:
			case <-req.Context().Done():
			}
		}
		w.WriteHeader(http.StatusOK)
	}, func(c *Config) { c.QueueSize, c.Timeout = 2, time.Hour })
	r.h.Feed(r.event(engine.EventNeedsSignIn, "s1", ""))
	if got := r.rc.next(t).what(); got != "needs_sign_in s1" {
		t.Fatalf("first POST %q", got)
	}
	// The webhook now hangs on s1. Five more events: Feed returns at once for each, and the queue
	// keeps the newest two.
	fed := make(chan struct{})
	go func() {
		for _, s := range []string{"s2", "s3", "s4", "s5", "s6"} {
			r.h.Feed(r.event(engine.EventRevoked, s, ""))
		}
		close(fed)
	}()
	select {
	case <-fed:
	case <-time.After(waitLimit):
		close(release)
		t.Fatal("Feed blocked while the webhook hung")
	}
	if n := r.h.Dropped(); n != 3 {
		t.Errorf("Dropped = %d, want 3", n)
	}
	close(release)
	for _, want := range []string{"revoked s5", "revoked s6"} {
		if got := r.rc.next(t).what(); got != want {
			t.Errorf("POST %q, want %q (the oldest are dropped)", got, want)
		}
	}
	r.logs.waitFor(t, "WARN hook: dropped 3 events for the webhook at http://127.0.0.1")
}

func TestHookNeverLogsTheURLPathOrTheHeaderValues(t *testing.T) {
	const pathSecret, headerSecret = "T0SECRET/B0SECRET/xyzzy", "hdr-secret-42"
	r := newRig(t, status(http.StatusInternalServerError), func(c *Config) {
		c.Retries = -1
		c.Headers = http.Header{"Authorization": {"Bearer " + headerSecret}}
	})
	r.h.Close() // replaced by one whose URL has a secret in its path
	cfg := r.h.cfg
	cfg.URL, cfg.Retries = r.rc.srv.URL+"/services/"+pathSecret, -1 // fill made it 0
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	h.Feed(r.event(engine.EventNeedsSignIn, "github", ""))
	if got := r.rc.next(t); got.header.Get("Authorization") != "Bearer "+headerSecret {
		t.Errorf("Authorization %q", got.header.Get("Authorization"))
	}
	r.logs.waitFor(t, "gave up")
	// A refused connection's error too.
	cfg.URL = "http://127.0.0.1:1/services/" + pathSecret
	h2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h2.Close)
	h2.Feed(r.event(engine.EventNeedsSignIn, "github", ""))
	r.logs.waitFor(t, "gave up")
	for _, line := range r.logs.all() {
		if strings.Contains(line, "SECRET") || strings.Contains(line, headerSecret) {
			t.Errorf("log line holds a secret: %q", line)
		}
	}
}
