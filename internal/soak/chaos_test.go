//go:build soak

package soak

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
)

// chaosCases runs each chaos case on its own small setup.
func chaosCases(t *testing.T, r *report) {
	r.run(t, "chaos", "as-down-60s",
		"the AS unreachable for 60 s: a server whose token stays valid has zero failed calls; a server whose "+
			"token expires during the outage fails only with the retryable auth_failure/upstream_unavailable, "+
			"then calls succeed again after the AS returns, with no sign-in and no needs-sign-in", asDown)
	r.run(t, "chaos", "as-500-and-429",
		"the token endpoint answers 500 and then 429 with Retry-After: 15 to a refresh: zero failed calls (the "+
			"valid token keeps serving), one degraded and one recovered event, the retry after the 429 waits at "+
			"least 15 s, zero invalid_grant", as500and429)
	r.run(t, "chaos", "as-restart-forgets-clients",
		"the AS restarts and forgets every client and grant: the engine registers again, announces exactly one "+
			"needs-sign-in, calls fail only with structured auth_failure errors, and one scripted sign-in (one "+
			"browser prompt, no further registration) brings the same client sessions back", asRestart)
	r.run(t, "chaos", "token-revoked",
		"the grant is revoked at the AS mid-run (opaque tokens, so the MCP server refuses the access token at "+
			"once): exactly one revoked/needs-sign-in notification, calls fail only with structured auth_failure "+
			"errors, and after a scripted `authkeeper login` calls resume in the same Go and TS client sessions",
		tokenRevoked)
	r.run(t, "chaos", "sigkill-mid-refresh",
		"the engine is killed with SIGKILL while a refresh is in flight at the AS, then restarted: it never "+
			"replays the refresh token the AS may have consumed (zero refresh_token.reused at the AS, so the "+
			"still-valid access token is not revoked with the grant), keeps serving that token, announces "+
			"needs-sign-in exactly once with structured errors on calls once it expires, and after one sign-in "+
			"calls work — never a dead server (every call gets an answer)", sigkill)
	r.run(t, "chaos", "wall-clock-jump",
		"(in-process engine, injected clock) the wall clock jumps 40 s forward, past the 30 s token's expiry, "+
			"with no call running: the wake check refreshes (trigger wake) before the next call, which succeeds; "+
			"a second jump with calls running causes zero failed calls", clockJump)
	r.run(t, "chaos", "keyring-stopped",
		"the keyring daemon stops: a warning names the failed save and says the token is kept in memory, "+
			"`authkeeper status` shows it, calls keep succeeding across refreshes, and no token is written in plain "+
			"text anywhere under the installation", keyringStopped)
}

// agents runs Go SDK clients through the proxy (and optionally TS clients through the bridge) for
// servers until stop is called; every outcome is kept.
type agents struct {
	tally  *tally
	goes   []*goAgent
	ts     []*tsAgent
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startAgents starts the clients; the TS clients give up by themselves after 10 minutes.
func startAgents(t *testing.T, e *install, goServers, tsServers []string) *agents {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &agents{tally: newTally(true), cancel: cancel}
	t.Cleanup(cancel)
	for _, s := range goServers {
		g := connectGo(t, s, e.endpoint(s))
		a.goes = append(a.goes, g)
		a.wg.Go(func() { g.loop(ctx, a.tally, 250*time.Millisecond) })
	}
	for _, s := range tsServers {
		a.ts = append(a.ts, startTS(t, e, s, 10*time.Minute, 250*time.Millisecond))
	}
	return a
}

// stop ends the Go clients, waits for the TS clients' last call, and returns every outcome and the
// number of sessions the TS clients opened.
func (a *agents) stop(t *testing.T) ([]outcome, int) {
	t.Helper()
	a.cancel()
	a.wg.Wait()
	sessions := 0
	for _, ts := range a.ts {
		ts.stop(t)
	}
	for _, ts := range a.ts {
		ts.wait(t, time.Minute)
		sessions += ts.record(a.tally)
	}
	return a.tally.outcomes(), sessions
}

// waitFor polls cond (another process's state) every 250 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// causes counts outcomes by cause ("ok" for successes) for server-independent summaries.
func causes(os []outcome) map[string]int {
	m := map[string]int{}
	for _, o := range os {
		c := o.Cause
		if c == "" {
			c = "ok"
		}
		m[c]++
	}
	return m
}

// login signs name in again through `authkeeper login` and the scripted browser, and returns how many
// times the browser was opened for it.
func login(t *testing.T, e *install, name string) int {
	t.Helper()
	before := len(e.browser.Opened())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if code, out, errOut := e.cli(ctx, "login", name); code != 0 {
		t.Errorf("authkeeper login %s: exit %d\n%s%s", name, code, out, errOut)
	}
	return len(e.browser.Opened()) - before
}

// leakCheck searches the installation for every token collected and records the result.
func leakCheck(t *testing.T, c *caseResult, e *install, toks *tokenSet, extra map[string]string, a *agents) {
	t.Helper()
	if a != nil {
		extra["client error messages"] = strings.Join(a.tally.messages, "\n")
		for i, ts := range a.ts {
			extra[fmt.Sprintf("ts client %d output", i)] = ts.proc.Output()
		}
	}
	hits := toks.leaks(e, extra)
	c.figure("tokens_collected", len(toks.List()))
	c.figure("token_leak_hits", len(hits))
	c.check(t, len(hits) == 0, "tokens found in: %v", hits)
}

func asDown(t *testing.T, c *caseResult) {
	e := newEngine(t)
	steady := newServer(t, e, "steady", testbed.AuthServerOptions{AccessTokenTTL: 10 * time.Minute}, false, false)
	short := newServer(t, e, "short", testbed.AuthServerOptions{AccessTokenTTL: 20 * time.Second}, false, false)
	toks := &tokenSet{}
	toks.sample(e, []string{"steady", "short"})
	opened := len(e.browser.Opened())
	a := startAgents(t, e, []string{"steady", "short"}, []string{"short"})
	time.Sleep(5 * time.Second)
	down := time.Now()
	steady.as.Stop(t)
	short.as.Stop(t)
	time.Sleep(60 * time.Second)
	steady.as.Start(t)
	short.as.Start(t)
	up := time.Now()
	c.figure("short_at_as_return", retryPlan(e, "short"))
	recovered := waitFor(90*time.Second, func() bool {
		evs := e.audit()
		return countKind(evs, engine.EventRecovered, "short") > 0
	})
	recoveredAt := time.Now()
	if !recovered {
		c.figure("short_90s_after_as_return", retryPlan(e, "short"))
	}
	time.Sleep(5 * time.Second)
	toks.sample(e, []string{"steady", "short"})
	outs, sessions := a.stop(t)

	var steadyFail, shortBad, shortRetryable int
	var lastShortFail time.Time
	perAgent := splitByAgent(a)
	for name, os := range perAgent {
		for _, o := range os {
			switch {
			case o.Cause == "":
			case strings.HasSuffix(name, ":steady"):
				steadyFail++
			case o.Cause == "auth_failure/upstream_unavailable" && o.Retryable:
				shortRetryable++
				lastShortFail = o.At
			default:
				shortBad++
				lastShortFail = o.At
			}
		}
	}
	evs := e.audit()
	c.figure("outcomes", causes(outs))
	c.figure("outage_s", up.Sub(down).Round(time.Second).Seconds())
	c.figure("short_retryable_failures", shortRetryable)
	if recovered {
		c.figure("recovery_after_as_returned_s", recoveredAt.Sub(up).Round(time.Second).Seconds())
	}
	if !lastShortFail.IsZero() {
		c.figure("last_failed_call_after_as_returned_s", lastShortFail.Sub(up).Round(time.Second).Seconds())
	}
	c.figure("ts_sessions_opened", sessions)
	c.check(t, steadyFail == 0, "the server with a valid token had %d failed calls", steadyFail)
	c.check(t, shortRetryable > 0, "no call failed while the short token was expired: the case did not test the outage")
	c.check(t, shortBad == 0, "%d failures on the short server were not retryable upstream_unavailable", shortBad)
	c.check(t, recovered, "no recovered event within 90 s of the AS returning")
	c.check(t, lastShortFail.Before(recoveredAt.Add(2*time.Second)), "calls still failed after recovery")
	c.check(t, countKind(evs, engine.EventNeedsSignIn, "") == 0, "needs-sign-in announced during an outage")
	c.check(t, len(e.browser.Opened()) == opened, "a sign-in was started")
	c.check(t, sessions == 1, "the TS client opened %d sessions, want 1", sessions)
	leakCheck(t, c, e, toks, map[string]string{}, a)
}

// retryPlan describes what the engine plans for server name: its state, last refresh and next one.
func retryPlan(e *install, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	snap, err := e.remote.Status(ctx)
	if err != nil {
		return "status: " + err.Error()
	}
	for _, s := range snap.Servers {
		if s.Name == name {
			return fmt.Sprintf("state %s, last refresh %s/%s, next refresh (%s) in %s", s.State, s.Last.Trigger, s.Last.Outcome,
				s.NextTrigger, time.Until(s.Next).Round(time.Second))
		}
	}
	return "not configured"
}

// splitByAgent separates a's kept outcomes by agent ("go:NAME", "ts:NAME").
func splitByAgent(a *agents) map[string][]outcome {
	out := map[string][]outcome{}
	for _, o := range a.tally.outcomes() {
		out[o.Agent] = append(out[o.Agent], o)
	}
	return out
}

func as500and429(t *testing.T, c *caseResult) {
	e := newEngine(t)
	s := newServer(t, e, "flaky", testbed.AuthServerOptions{AccessTokenTTL: time.Minute}, false, false)
	toks := &tokenSet{}
	toks.sample(e, []string{"flaky"})
	a := startAgents(t, e, []string{"flaky"}, []string{"flaky"})
	s.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 500})
	s.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 429, RetryAfter: "15"})
	base := len(s.as.TokenRequestTimes(t, "refresh_token"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	code, _, _ := e.cli(ctx, "refresh", "flaky") // the first attempt gets the 500
	cancel()
	c.figure("forced_refresh_exit", code)
	ok := waitFor(45*time.Second, func() bool {
		return countKind(e.audit(), engine.EventRecovered, "flaky") > 0
	})
	time.Sleep(3 * time.Second)
	// Each refresh request as the AS timed its arrival.
	stamps := s.as.TokenRequestTimes(t, "refresh_token")[base:]
	toks.sample(e, []string{"flaky"})
	outs, _ := a.stop(t)
	evs := e.audit()
	gaps := []float64{}
	for i := 1; i < len(stamps); i++ {
		gaps = append(gaps, stamps[i].Sub(stamps[i-1]).Round(100*time.Millisecond).Seconds())
	}
	st := s.as.Stats(t)
	ig := countPrefix(st.Events, "refresh_token.reused") + countPrefix(st.Events, "grant.revoked")
	c.figure("outcomes", causes(outs))
	c.figure("refresh_requests", len(stamps))
	c.figure("gaps_between_refresh_requests_s", gaps)
	c.figure("invalid_grant", ig)
	c.check(t, ok, "no recovered event within 45 s")
	c.check(t, a.tally.failed() == 0, "%d failed calls: %v", a.tally.failed(), causes(outs))
	c.check(t, countKind(evs, engine.EventDegraded, "flaky") == 1, "%d degraded events, want 1", countKind(evs, engine.EventDegraded, "flaky"))
	c.check(t, countKind(evs, engine.EventRecovered, "flaky") == 1, "%d recovered events, want 1", countKind(evs, engine.EventRecovered, "flaky"))
	c.check(t, len(stamps) == 3 && gaps[1] >= 15, "refresh requests %d with gaps %v: want 3, the last at least 15 s after the 429", len(stamps), gaps)
	c.check(t, ig == 0, "%d invalid_grant", ig)
	leakCheck(t, c, e, toks, map[string]string{}, a)
}

func asRestart(t *testing.T, c *caseResult) {
	e := newEngine(t)
	s := newServer(t, e, "amnesiac", testbed.AuthServerOptions{AccessTokenTTL: 10 * time.Second}, false, false)
	toks := &tokenSet{}
	toks.sample(e, []string{"amnesiac"})
	a := startAgents(t, e, []string{"amnesiac"}, []string{"amnesiac"})
	time.Sleep(3 * time.Second)
	s.as.Restart(t)
	announced := waitFor(20*time.Second, func() bool { return countKind(e.audit(), engine.EventNeedsSignIn, "amnesiac") > 0 })
	// Let the issued token expire so that calls see the sign-in error, then sign in once.
	failing := waitFor(20*time.Second, func() bool { return a.tally.failed() > 0 })
	time.Sleep(3 * time.Second)
	registeredBefore := countPrefix(s.as.Events(t), "client.registered")
	prompts := login(t, e, "amnesiac")
	signedIn := time.Now()
	time.Sleep(6 * time.Second)
	toks.sample(e, []string{"amnesiac"})
	outs, sessions := a.stop(t)
	evs := e.audit()
	var bad, after, okAfter int
	for _, o := range outs {
		if o.Cause != "" && !strings.HasPrefix(o.Cause, "auth_failure/") {
			bad++
		}
		if o.At.After(signedIn.Add(2 * time.Second)) {
			if o.Cause != "" {
				after++
			} else {
				okAfter++
			}
		}
	}
	registered := countPrefix(s.as.Events(t), "client.registered")
	c.figure("outcomes", causes(outs))
	c.figure("needs_sign_in_events", countKind(evs, engine.EventNeedsSignIn, ""))
	c.figure("registrations_after_restart", map[string]int{"before_sign_in": registeredBefore, "total": registered})
	c.figure("browser_prompts_for_sign_in", prompts)
	c.figure("ts_sessions_opened", sessions)
	c.check(t, announced, "no needs-sign-in within 20 s of the restart")
	c.check(t, failing, "no call failed after the AS forgot the grant")
	c.check(t, countKind(evs, engine.EventNeedsSignIn, "") == 1, "needs-sign-in announced %d times, want 1", countKind(evs, engine.EventNeedsSignIn, ""))
	c.check(t, registeredBefore == 1 && registered == 1, "registrations after the restart: %d before sign-in, %d in all; want 1 and 1", registeredBefore, registered)
	c.check(t, prompts == 1, "the sign-in opened the browser %d times, want 1", prompts)
	c.check(t, bad == 0, "%d failures were not structured auth_failure errors", bad)
	c.figure("calls_ok_after_sign_in", okAfter)
	c.check(t, after == 0 && okAfter > 0, "after signing in again: %d failed, %d succeeded", after, okAfter)
	c.check(t, sessions == 1, "the TS client opened %d sessions, want 1", sessions)
	leakCheck(t, c, e, toks, map[string]string{}, a)
}

func tokenRevoked(t *testing.T, c *caseResult) {
	e := newEngine(t)
	s := newServer(t, e, "revoked", testbed.AuthServerOptions{AccessTokenTTL: time.Minute, Opaque: true}, false, false)
	toks := &tokenSet{}
	toks.sample(e, []string{"revoked"})
	a := startAgents(t, e, []string{"revoked"}, []string{"revoked"})
	time.Sleep(3 * time.Second)
	ks, err := keychain.NewKeyringStore(keychain.KeyringConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ks.Get("revoked")
	if err != nil {
		t.Fatal(err)
	}
	s.as.Revoke(t, rec.RefreshToken) // the whole grant, its access tokens included
	failing := waitFor(15*time.Second, func() bool { return a.tally.failed() > 0 })
	time.Sleep(3 * time.Second)
	prompts := login(t, e, "revoked")
	signedIn := time.Now()
	time.Sleep(6 * time.Second)
	toks.sample(e, []string{"revoked"})
	outs, sessions := a.stop(t)
	evs := e.audit()
	var bad, after, okAfter int
	for _, o := range outs {
		if o.Cause != "" && !strings.HasPrefix(o.Cause, "auth_failure/") {
			bad++
		}
		if o.At.After(signedIn.Add(2 * time.Second)) {
			if o.Cause != "" {
				after++
			} else {
				okAfter++
			}
		}
	}
	notes := countKind(evs, engine.EventRevoked, "") + countKind(evs, engine.EventNeedsSignIn, "")
	st := s.as.Stats(t)
	c.figure("outcomes", causes(outs))
	c.figure("revoked_or_needs_sign_in_events", notes)
	c.figure("as_events_grant_revoked", countPrefix(st.Events, "grant.revoked"))
	c.figure("as_events_refresh_token_reused", countPrefix(st.Events, "refresh_token.reused"))
	c.figure("browser_prompts_for_sign_in", prompts)
	c.figure("calls_ok_after_sign_in", okAfter)
	c.figure("ts_sessions_opened", sessions)
	c.check(t, failing, "no call failed after the grant was revoked")
	c.check(t, notes == 1, "%d revoked/needs-sign-in events, want 1", notes)
	c.check(t, bad == 0, "%d failures were not structured auth_failure errors", bad)
	c.check(t, after == 0 && okAfter > 0, "after signing in again: %d failed, %d succeeded", after, okAfter)
	c.check(t, sessions == 1, "the TS client opened %d sessions, want 1", sessions)
	c.check(t, countPrefix(st.Events, "refresh_token.reused") == 0, "a refresh token was replayed")
	leakCheck(t, c, e, toks, map[string]string{}, a)
}

func sigkill(t *testing.T, c *caseResult) {
	e := newEngine(t)
	s := newServer(t, e, "killed", testbed.AuthServerOptions{AccessTokenTTL: 20 * time.Second}, false, false)
	toks := &tokenSet{}
	toks.sample(e, []string{"killed"})
	base := s.as.Stats(t).Requests["token"]
	s.as.Fault(t, testbed.Fault{Endpoint: "token", Delay: 4 * time.Second})
	refreshDone := make(chan struct{})
	go func() {
		defer close(refreshDone)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		e.cli(ctx, "refresh", "killed")
	}()
	inFlight := waitFor(10*time.Second, func() bool { return s.as.Stats(t).Requests["token"] > base })
	c.check(t, inFlight, "the refresh never reached the AS")
	time.Sleep(500 * time.Millisecond)
	e.kill()
	<-refreshDone
	time.Sleep(5 * time.Second) // the AS finishes the held refresh: the rotated pair is lost with the engine
	e.start()
	// New sessions on the new engine's proxy (a new port), calling through two token lifetimes.
	a := startAgents(t, e, []string{"killed"}, []string{"killed"})
	asked := waitFor(45*time.Second, func() bool { return countKind(e.audit(), engine.EventNeedsSignIn, "killed") > 0 })
	var prompts int
	if asked {
		waitFor(25*time.Second, func() bool { return a.tally.failed() > 0 })
		prompts = login(t, e, "killed")
	}
	signedIn := time.Now()
	time.Sleep(5 * time.Second)
	toks.sample(e, []string{"killed"})
	outs, _ := a.stop(t)
	evs := e.audit()
	var bad, after int
	for _, o := range outs {
		if o.Cause != "" && !strings.HasPrefix(o.Cause, "auth_failure/") {
			bad++
		}
		if o.Cause != "" && o.At.After(signedIn.Add(2*time.Second)) {
			after++
		}
	}
	branch := "recovered without sign-in"
	if asked {
		branch = "asked for sign-in"
	}
	st := s.as.Stats(t)
	c.figure("branch", branch)
	c.figure("outcomes", causes(outs))
	c.figure("needs_sign_in_events", countKind(evs, engine.EventNeedsSignIn, ""))
	c.figure("as_events_refresh_token_reused", countPrefix(st.Events, "refresh_token.reused"))
	c.figure("browser_prompts_for_sign_in", prompts)
	h, err := e.health(context.Background())
	c.check(t, err == nil && h.Status == "ok", "the restarted engine's health: %v %v", h.Status, err)
	c.check(t, countKind(evs, engine.EventNeedsSignIn, "") <= 1, "needs-sign-in announced %d times", countKind(evs, engine.EventNeedsSignIn, ""))
	c.check(t, bad == 0, "%d calls failed without a structured auth_failure (a dead server)", bad)
	c.check(t, asked || a.tally.failed() == 0, "no sign-in was asked for, yet %d calls failed", a.tally.failed())
	c.check(t, !asked || prompts == 1, "the sign-in opened the browser %d times, want 1", prompts)
	c.check(t, after == 0, "%d calls failed after recovery", after)
	c.check(t, countPrefix(st.Events, "refresh_token.reused") == 0,
		"the restarted engine replayed the refresh token its killed predecessor had sent (%d reuse events)",
		countPrefix(st.Events, "refresh_token.reused"))
	leakCheck(t, c, e, toks, map[string]string{}, a)
}

func keyringStopped(t *testing.T, c *caseResult) {
	e := newEngine(t)
	newServer(t, e, "nokeyring", testbed.AuthServerOptions{AccessTokenTTL: 8 * time.Second}, false, false)
	toks := &tokenSet{}
	toks.sample(e, []string{"nokeyring"})
	a := startAgents(t, e, []string{"nokeyring"}, []string{"nokeyring"})
	time.Sleep(2 * time.Second)
	e.Keyring.Stop(t)
	stopped := time.Now()
	warned := waitFor(20*time.Second, func() bool {
		for _, ev := range e.audit() {
			if ev.Kind == engine.EventWarning && strings.Contains(ev.Message, "kept in memory") {
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, status, _ := e.cli(ctx, "status")
	cancel()
	// Keep calling across three more refreshes, sampling tokens from the headers helper.
	for time.Since(stopped) < 30*time.Second {
		toks.sample(e, []string{"nokeyring"})
		time.Sleep(2 * time.Second)
	}
	outs, _ := a.stop(t)
	evs := e.audit()
	c.figure("outcomes", causes(outs))
	c.figure("refreshes_after_keyring_stopped", countKind(evs, engine.EventRefreshed, "nokeyring")-1)
	c.figure("status_output", strings.TrimSpace(status))
	c.check(t, warned, "no warning saying the token is kept in memory within 20 s")
	c.check(t, strings.Contains(strings.ToLower(status), "keychain") || strings.Contains(strings.ToLower(status), "memory"),
		"`authkeeper status` does not show the keychain problem:\n%s", status)
	c.check(t, a.tally.failed() == 0, "%d failed calls: %v", a.tally.failed(), causes(outs))
	leakCheck(t, c, e, toks, map[string]string{}, a)
}
