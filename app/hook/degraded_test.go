package hook

import (
	"net/http"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/google/go-cmp/cmp"
)

func TestHookFiresDegradedOnceAfterDegradedAfterPerServer(t *testing.T) {
	r := newRig(t, status(http.StatusOK), func(c *Config) { c.DegradedAfter = 10 * time.Minute })
	r.h.Feed(r.event(engine.EventDegraded, "github", "the token endpoint answered 502"))
	r.h.Feed(r.event(engine.EventDegraded, "linear", "timeout"))
	r.clock.Advance(4 * time.Minute)
	// A second degraded in the episode keeps the first one's wait, and its newer message.
	r.h.Feed(r.event(engine.EventDegraded, "github", "the token endpoint answered 503"))
	r.h.Feed(r.event(engine.EventRecovered, "linear", ""))
	if got := r.clock.pending(); !cmp.Equal(got, []time.Duration{10 * time.Minute}) {
		t.Fatalf("armed %v, want github's one 10-minute wait", got)
	}
	r.clock.Advance(6*time.Minute - time.Second)
	if got := r.clock.pending(); len(got) != 1 {
		t.Fatalf("the degraded timer fired before 10 minutes (armed: %v)", got)
	}
	r.clock.Advance(time.Second)
	got := r.rc.next(t)
	want := map[string]any{
		"event": "degraded", "server": "github", "time": "2026-03-01T12:10:00Z", "since": "2026-03-01T12:00:00Z",
		"message": "the token endpoint answered 503", "instance": "runner-7", "version": 1.0,
		"text": "authkeeper on runner-7: github has failed to refresh its token since 2026-03-01T12:00:00Z " +
			"(the current token still works until it expires): the token endpoint answered 503",
	}
	if diff := cmp.Diff(want, got.doc); diff != "" {
		t.Errorf("document (-want +got):\n%s", diff)
	}
	// Once per episode: still degraded, announced again, an hour on — nothing more.
	r.h.Feed(r.event(engine.EventDegraded, "github", "still failing"))
	r.clock.Advance(time.Hour)
	if p := r.clock.pending(); len(p) != 0 {
		t.Errorf("armed %v after the episode fired", p)
	}
	r.h.Feed(r.event(engine.EventNeedsSignIn, "probe", ""))
	if got := r.rc.next(t).what(); got != "needs_sign_in probe" {
		t.Errorf("next POST %q, want needs_sign_in probe (no second degraded, none for linear)", got)
	}
	// A new episode after a recovery fires again.
	r.h.Feed(r.event(engine.EventRecovered, "github", ""))
	r.h.Feed(r.event(engine.EventDegraded, "github", "again"))
	r.clock.Advance(10 * time.Minute)
	if got := r.rc.next(t); got.what() != "degraded github" || got.doc["since"] != "2026-03-01T13:10:00Z" {
		t.Errorf("second episode: %v", got.doc)
	}
}

func TestHookDoesNotFireDegradedWhenTheEpisodeEndsFirst(t *testing.T) {
	for _, end := range []engine.EventKind{
		engine.EventRecovered, engine.EventRefreshed, engine.EventDeadlineRefresh, engine.EventSignedIn,
		engine.EventSignedOut, engine.EventRemoved, engine.EventNeedsSignIn, engine.EventRevoked,
	} {
		t.Run(string(end), func(t *testing.T) {
			r := newRig(t, status(http.StatusOK), nil)
			r.h.Feed(r.event(engine.EventDegraded, "github", ""))
			r.clock.Advance(DefaultDegradedAfter - time.Minute)
			r.h.Feed(r.event(end, "github", ""))
			if p := r.clock.pending(); len(p) != 0 {
				t.Errorf("the degraded timer is still armed after %s: %v", end, p)
			}
			r.clock.Advance(time.Hour)
			r.h.Feed(r.event(engine.EventNeedsSignIn, "probe", ""))
			var want []string
			if end == engine.EventNeedsSignIn || end == engine.EventRevoked {
				want = append(want, string(end)+" github") // worse news fires on its own
			}
			want = append(want, "needs_sign_in probe")
			var got []string
			for range want {
				got = append(got, r.rc.next(t).what())
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("POSTs (-want +got):\n%s", diff)
			}
			// The episode is over: the next one waits and fires afresh.
			r.h.Feed(r.event(engine.EventDegraded, "github", ""))
			r.clock.Advance(DefaultDegradedAfter)
			if got := r.rc.next(t).what(); got != "degraded github" {
				t.Errorf("next episode: POST %q, want degraded github", got)
			}
		})
	}
}

func TestHookIgnoresADegradedTimerThatFiredAsTheEpisodeEnded(t *testing.T) {
	r := newRig(t, status(http.StatusOK), nil)
	r.h.Feed(r.event(engine.EventDegraded, "github", ""))
	run := r.clock.advanceHolding(DefaultDegradedAfter)    // fired; its call waits, as on a busy machine
	r.h.Feed(r.event(engine.EventRecovered, "github", "")) // too late to stop it
	r.h.Feed(r.event(engine.EventDegraded, "github", ""))  // a new episode, which must wait its own 10 minutes
	run()
	r.h.Feed(r.event(engine.EventNeedsSignIn, "probe", ""))
	if got := r.rc.next(t).what(); got != "needs_sign_in probe" {
		t.Errorf("POST %q, want needs_sign_in probe: the ended episode's timer fired", got)
	}
}

func TestHookCloseDisarmsAndIgnoresLaterEvents(t *testing.T) {
	r := newRig(t, status(http.StatusOK), nil)
	r.h.Feed(r.event(engine.EventDegraded, "github", ""))
	r.h.Close()
	if p := r.clock.pending(); len(p) != 0 {
		t.Errorf("armed after Close: %v", p)
	}
	r.h.Feed(r.event(engine.EventNeedsSignIn, "github", ""))
	r.h.Feed(r.event(engine.EventDegraded, "linear", ""))
	r.clock.Advance(time.Hour)
	if p := r.clock.pending(); len(p) != 0 {
		t.Errorf("armed after Close: %v", p)
	}
	select {
	case got := <-r.rc.got:
		t.Errorf("POST after Close: %v", got.doc)
	default:
	}
	var nilHook *Hook // an unconfigured hook is a nil one: everything is a no-op
	nilHook.Feed(r.event(engine.EventNeedsSignIn, "github", ""))
	nilHook.Run(t.Context(), nil)
	nilHook.Close()
}
