package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// TestEngineServesTheValidTokenWhileTheASIsDownAndRecovers: with the AS unreachable at refresh time the
// server is "degraded", the current token keeps serving, and the first retry after the AS returns
// recovers without any human.
func TestEngineServesTheValidTokenWhileTheASIsDownAndRecovers(t *testing.T) {
	b := newBench(t, benchOptions{AS: testbed.AuthServerOptions{AccessTokenTTL: 20 * time.Second}})
	_, ch, cancel := b.eng.Subscribe()
	defer cancel()
	before, _ := b.eng.Token(context.Background(), "bench")
	b.as.Stop(t)
	ev := waitEvent(t, ch, engine.EventDegraded, 20*time.Second) // the planned refresh at ~10 s fails
	if ev.Outcome != "transient" {
		t.Errorf("degraded outcome %q, want transient", ev.Outcome)
	}
	if st := b.eng.Snapshot().Servers[0]; st.State != engine.StateDegraded {
		t.Errorf("state %s, want degraded", st.State)
	}
	tok, err := b.eng.Token(context.Background(), "bench")
	if err != nil || tok != before {
		t.Fatalf("while the AS is down: %v (same token %t); want the still-valid token", err, tok == before)
	}
	if h := b.eng.Health(); h.Servers[0].State != "degraded" || h.Servers[0].SecondsLeft <= 0 {
		t.Errorf("healthz %+v, want degraded with time left", h.Servers[0])
	}
	b.as.Start(t)
	waitEvent(t, ch, engine.EventRecovered, 30*time.Second)
	if tok, _ := b.eng.Token(context.Background(), "bench"); tok == before {
		t.Error("recovered but still serving the old token")
	}
}

// TestEngineHonoursRetryAfterFromTheAS: a 429 with Retry-After: 8 at refresh time delays the retry by
// at least eight seconds (longer than any backoff the engine would choose for a first retry).
func TestEngineHonoursRetryAfterFromTheAS(t *testing.T) {
	b := newBench(t, benchOptions{AS: testbed.AuthServerOptions{AccessTokenTTL: 30 * time.Second}})
	_, ch, cancel := b.eng.Subscribe()
	defer cancel()
	b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 429, RetryAfter: "8", Count: 1})
	failed := waitEvent(t, ch, engine.EventDegraded, 25*time.Second)
	ok := waitEvent(t, ch, engine.EventRecovered, 25*time.Second)
	if gap := ok.Time.Sub(failed.Time); gap < 8*time.Second {
		t.Errorf("retried %v after a 429 with Retry-After: 8", gap)
	}
	if st := b.eng.Snapshot().Servers[0]; st.State != engine.StateFresh {
		t.Errorf("state %s after recovery", st.State)
	}
}

// TestEngineAfterTheASForgetsItsClientAsksForOneSignIn: an AS restart forgets the registered client and
// the grant. The next refresh fails with invalid_client; the engine re-registers, announces exactly one
// needs-sign-in, and one scripted sign-in with the new client brings the server back.
func TestEngineAfterTheASForgetsItsClientAsksForOneSignIn(t *testing.T) {
	b := newBench(t, benchOptions{AS: testbed.AuthServerOptions{AccessTokenTTL: 6 * time.Second}})
	_, ch, cancel := b.eng.Subscribe()
	defer cancel()
	oldClient := storedRecord(t, "bench").Binding.ClientID
	b.as.Restart(t)
	waitEvent(t, ch, engine.EventNeedsSignIn, 20*time.Second)
	// engineRequests counts what the engine asks of the AS: every request but the MCP server's own
	// (its JWKS and introspection).
	engineRequests := func() int {
		n := 0
		for endpoint, c := range b.as.Stats(t).Requests {
			if endpoint != "jwks" && endpoint != "introspection" {
				n += c
			}
		}
		return n
	}
	asked := engineRequests()
	// The access token already issued still works at the server until it expires; then only a sign-in
	// helps. This sleep stays: it waits for the real expiry of the token the real AS issued, against
	// the engine's real clock, and nothing marks that moment — a server that needs a sign-in has no
	// timer armed and emits no event when its token runs out.
	exp := b.eng.Snapshot().Servers[0].Expiry
	time.Sleep(time.Until(exp) + 100*time.Millisecond)
	if _, err := b.eng.Token(context.Background(), "bench"); !errors.Is(err, engine.ErrNeedsSignIn) {
		t.Fatalf("Token after the AS forgot the client and the token expired: %v, want ErrNeedsSignIn", err)
	}
	newClient := storedRecord(t, "bench").Binding.ClientID // the re-registration is saved at once
	if newClient == "" || newClient == oldClient {
		t.Errorf("client after re-registration %q (was %q): want a new registration", newClient, oldClient)
	}
	// No retry loop and no second announcement while waiting for the user: nothing is planned (every
	// retry the keeper makes is its one timer, which the status shows as Next), the AS got no request
	// since the needs-sign-in (the wait for the expiry included), and needs-sign-in was announced once.
	if st := b.eng.Snapshot().Servers[0]; st.State != engine.StateNeedsSignIn || !st.Next.IsZero() {
		t.Errorf("status %s, next %s at %v: want needs-sign-in with nothing planned", st.State, st.NextTrigger, st.Next)
	}
	if n := engineRequests() - asked; n != 0 {
		t.Errorf("%d requests to the AS while the server waited for a sign-in, want none", n)
	}
	for len(ch) > 0 {
		if ev := <-ch; ev.Kind == engine.EventNeedsSignIn {
			t.Error("needs-sign-in announced twice in one episode")
		}
	}
	opened := len(b.browser.Opened())
	if err := b.eng.SignIn(context.Background(), "bench", false, nil); err != nil {
		t.Fatalf("sign in again: %v", err)
	}
	if n := len(b.browser.Opened()) - opened; n != 1 {
		t.Errorf("sign-in opened the browser %d times, want 1", n)
	}
	if got := storedRecord(t, "bench").Binding.ClientID; got != newClient {
		t.Errorf("sign-in used client %q, want the re-registered %q (no second registration)", got, newClient)
	}
	if _, err := b.eng.Token(context.Background(), "bench"); err != nil {
		t.Fatalf("Token after signing in again: %v", err)
	}
	waitEvent(t, ch, engine.EventRefreshed, 15*time.Second) // and refreshing resumes
}

// TestEngineKeepsServingFromMemoryWhenTheKeyringStops: with the Secret Service gone, a refresh still
// succeeds, the new pair serves from memory, a warning says the save failed, and nothing is written
// in plain text anywhere under the app's directories.
func TestEngineKeepsServingFromMemoryWhenTheKeyringStops(t *testing.T) {
	b := newBench(t, benchOptions{AS: testbed.AuthServerOptions{AccessTokenTTL: 8 * time.Second}})
	_, ch, cancel := b.eng.Subscribe()
	defer cancel()
	before, _ := b.eng.Token(context.Background(), "bench")
	b.keyring.Stop(t)
	warn := waitEvent(t, ch, engine.EventWarning, 20*time.Second)
	if !strings.Contains(warn.Message, "kept in memory") {
		t.Errorf("warning %q does not say the token is kept in memory", warn.Message)
	}
	tok, err := b.eng.Token(context.Background(), "bench")
	if err != nil || tok == before {
		t.Fatalf("after the refresh with no keyring: %v (new token %t)", err, tok != before)
	}
	if st := b.eng.Snapshot().Servers[0]; !st.Unsaved {
		t.Errorf("status %+v does not say the newest pair is unsaved", st)
	}
	if h := b.eng.Health(); h.Servers[0].State != "degraded" {
		t.Errorf("healthz says %q with the keychain gone, want degraded", h.Servers[0].State)
	}
	for _, dir := range []string{b.paths.ConfigDir, b.paths.StateDir, b.paths.RuntimeDir} {
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Type()&os.ModeSocket != 0 {
				return nil
			}
			data, _ := os.ReadFile(p)
			if strings.Contains(string(data), tok) || strings.Contains(string(data), before) {
				t.Errorf("%s contains an access token in plain text", p)
			}
			return nil
		})
	}
}

// TestEngineStartedOnALockedKeychainRecoversWhenItIsUnlocked: an engine that starts while the login
// keyring is locked lists the server as degraded with the keychain's own diagnosis, refreshes nothing,
// and answers a proxied call with a retryable keychain_unavailable auth_failure. Once the keyring is
// unlocked, the next call has the engine read the keychain again: the stored grant serves, with no
// sign-in, no restart and no token request while it was locked.
func TestEngineStartedOnALockedKeychainRecoversWhenItIsUnlocked(t *testing.T) {
	b := newBench(t, benchOptions{AS: testbed.AuthServerOptions{AccessTokenTTL: time.Hour}})
	stored, err := b.eng.Token(context.Background(), "bench")
	if err != nil {
		t.Fatal(err)
	}
	b.eng.Close()
	b.keyring.Lock(t)
	eng, err := newEngine(engine.Config{Paths: b.paths, ProxyAddr: "127.0.0.1:0", Opener: b.browser})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatalf("start on a locked keychain: %v (want a degraded start, not a failure)", err)
	}
	t.Cleanup(func() { eng.Close() })
	_, ch, cancel := eng.Subscribe()
	defer cancel()
	if w := eng.Warning(); !strings.Contains(w, "locked") {
		t.Errorf("start warning %q does not say the keychain is locked", w)
	}
	st := eng.Snapshot().Servers[0]
	if st.State != engine.StateDegraded || !strings.Contains(st.Message, "keychain") || !strings.Contains(st.Message, "unlock it") {
		t.Errorf("status %s %q, want degraded with the keychain's diagnosis", st.State, st.Message)
	}
	if _, err := eng.Token(context.Background(), "bench"); !errors.Is(err, engine.ErrCredentialsUnreadable) {
		t.Errorf("Token while locked: %v, want ErrCredentialsUnreadable", err)
	}
	status, _, body := proxyPost(t, eng.ProxyEndpoint("bench"), nil, proxyInitBody)
	var r proxy.RPCResponse
	if err := json.Unmarshal([]byte(body), &r); err != nil || status != http.StatusOK || r.Error.Data.Subtype != proxy.SubtypeKeychainUnavailable ||
		!r.Error.Data.Retryable || !strings.Contains(r.Error.Data.Action, "Unlock the keychain") {
		t.Errorf("proxied call while locked: %d %s, want a retryable keychain_unavailable auth_failure", status, body)
	}
	if strings.Contains(body, stored) {
		t.Error("the error carries the token")
	}
	refreshes := b.as.TokenRequests(t, "refresh_token")

	b.keyring.Unlock(t)
	// A call for the token has the engine read the keychain again in the background, unless it read it
	// less than a second ago (the calls above may have had it do so); the read that finds the record
	// ends with a recovered event. So: ask, wait for that event, and ask again each second without it.
	ask := func() { _, _ = eng.Token(context.Background(), "bench") } // fails until the read is done
	ask()
	again := time.NewTicker(time.Second)
	defer again.Stop()
	deadline := time.After(10 * time.Second)
	var recovered engine.Event
	for recovered.Kind != engine.EventRecovered {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("event stream closed while waiting for the keychain to be read again")
			}
			recovered = ev
		case <-again.C:
			ask()
		case <-deadline:
			t.Fatal("the engine did not read the keychain again within 10s of the unlock")
		}
	}
	if recovered.Trigger != "keychain" {
		t.Errorf("recovered event %+v, want trigger keychain", recovered)
	}
	if tok, err := eng.Token(context.Background(), "bench"); err != nil || tok != stored {
		t.Errorf("after the unlock: %v (the stored token: %t); want the stored token", err, tok == stored)
	}
	if st := eng.Snapshot().Servers[0]; st.State != engine.StateFresh || st.Next.IsZero() {
		t.Errorf("after the unlock: %s, next refresh %v; want fresh with a refresh planned", st.State, st.Next)
	}
	if n := b.as.TokenRequests(t, "refresh_token") - refreshes; n != 0 {
		t.Errorf("%d refresh requests while the keychain was locked", n)
	}
	if n := len(b.browser.Opened()); n != 1 {
		t.Errorf("browser opened %d times, want 1 (the first sign-in only)", n)
	}
}

// TestTemporaryOwnerRefusesToHandOverAnUnsavedPair: a temporary owner (a command that owns only until
// the app starts) whose newest token pair could not be saved — the keyring stopped after a rotation —
// answers a hand-over with 409 "unsaved" and keeps owning: the next owner would load the refresh token
// the AS already rotated away. (The hand-over itself is TestServeTakesOverFromABridgeThatOwned.)
func TestTemporaryOwnerRefusesToHandOverAnUnsavedPair(t *testing.T) {
	b := newBench(t, benchOptions{AS: testbed.AuthServerOptions{AccessTokenTTL: 8 * time.Second}})
	b.eng.Close()
	start := func() *engine.Engine {
		t.Helper()
		eng := startEngine(t, engine.Config{Paths: b.paths, ProxyAddr: "127.0.0.1:0", Opener: b.browser, Temporary: true})
		return eng
	}
	eng := start()
	r := control.NewRemote(eng.ControlAddr())
	if h, err := r.Health(context.Background()); err != nil || !h.Temporary {
		t.Fatalf("health %+v, %v: want a temporary owner", h, err)
	}
	_, ch, cancel := eng.Subscribe()
	defer cancel()
	b.keyring.Stop(t)
	if ev := waitEvent(t, ch, engine.EventWarning, 20*time.Second); !strings.Contains(ev.Message, "kept in memory") {
		t.Fatalf("warning %q, want the unsaved pair", ev.Message)
	}
	var re *control.RemoteError
	if err := r.Handover(context.Background()); !errors.As(err, &re) || re.Status != http.StatusConflict || re.Code != control.CodeUnsaved {
		t.Fatalf("hand-over with an unsaved pair: %v, want 409 unsaved", err)
	}
	if _, err := engine.AcquireOwner(b.paths, eng.ControlAddr()); !errors.Is(err, engine.ErrNotOwner) {
		t.Fatalf("the owner lock was released after a refused hand-over: %v", err)
	}
	if _, err := eng.Token(context.Background(), "bench"); err != nil {
		t.Errorf("the temporary owner stopped serving after refusing: %v", err)
	}
}
