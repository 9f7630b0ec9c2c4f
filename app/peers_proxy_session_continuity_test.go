package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/keychain"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// proxyVariants are the bench's MCP servers in both response modes.
var proxyVariants = []struct {
	name     string
	ts, json bool
}{
	{"go-sse", false, false}, {"go-json", false, true}, {"ts-sse", true, false}, {"ts-json", true, true},
}

// TestProxyKeepsOneSessionAcrossFiveRotations: with 3-second access tokens, one Go SDK client session
// calls tools through the proxy until the server has seen six different tokens (five rotations),
// without reconnecting and without a single failed call, against both SDK servers in both modes.
func TestProxyKeepsOneSessionAcrossFiveRotations(t *testing.T) {
	for _, v := range proxyVariants {
		t.Run(v.name, func(t *testing.T) {
			if testing.Short() && v.name != "go-sse" {
				t.Skip("one variant in -short")
			}
			b := newBench(t, benchOptions{AS: testbed.AuthServerOptions{AccessTokenTTL: 3 * time.Second}, TS: v.ts, JSON: v.json})
			cs := b.proxySession(t, nil)
			session := cs.ID()
			seen := map[int64]bool{}
			deadline := time.Now().Add(60 * time.Second)
			calls := 0
			for len(seen) < 6 {
				if time.Now().After(deadline) {
					t.Fatalf("only %d tokens seen in 60 s", len(seen))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				w, err := proxyWhoami(ctx, cs)
				if err == nil {
					var got string
					got, err = proxyEcho(ctx, cs, fmt.Sprint(calls))
					if err == nil && got != fmt.Sprint(calls) {
						err = fmt.Errorf("echo %d returned %q", calls, got)
					}
				}
				cancel()
				if err != nil {
					t.Fatalf("call %d failed after %d tokens: %v", calls, len(seen), err)
				}
				seen[w.ExpiresAt] = true
				calls += 2
				time.Sleep(100 * time.Millisecond)
			}
			if cs.ID() != session {
				t.Errorf("session changed from %s to %s", session, cs.ID())
			}
			rotated := countPrefix(b.as.Events(t), "refresh_token.rotated")
			t.Logf("%d calls, %d tokens, %d rotations, server saw %d 401s", calls, len(seen), rotated, b.srv.Stats(t).Unauthorized)
			if rotated < 5 {
				t.Errorf("%d rotations, want at least 5", rotated)
			}
		})
	}
}

// TestProxyRevocationMidSessionFailsStructuredUntilSignIn: the AS revokes the grant mid-session; the
// next call fails with a credential_revoked auth_failure for that call (the session lives on), further
// calls fail the same way without asking the AS again, and after a scripted sign-in the same session's
// calls succeed. No error, response or audit line carries a token.
func TestProxyRevocationMidSessionFailsStructuredUntilSignIn(t *testing.T) {
	for _, v := range []struct {
		name string
		ts   bool
	}{{"go", false}, {"ts", true}} {
		t.Run(v.name, func(t *testing.T) {
			b := newBench(t, benchOptions{AS: testbed.AuthServerOptions{Opaque: true}, TS: v.ts})
			var sec tokenSet
			sec.addFromKeychain(t)
			cs := b.proxySession(t, nil)
			ctx := context.Background()
			if _, err := proxyEcho(ctx, cs, "before"); err != nil {
				t.Fatal(err)
			}
			// The keeper does not refresh a token refused moments after it was issued (that refusal goes
			// to the client unchanged); a mid-session revocation comes later.
			time.Sleep(engine.MinRefreshGap)
			b.as.Revoke(t, proxyRecord(t).RefreshToken) // the whole grant, access token included

			var texts []string
			for i := range 2 {
				_, err := proxyEcho(ctx, cs, "during")
				if err == nil {
					t.Fatalf("call %d succeeded with a revoked grant", i)
				}
				texts = append(texts, err.Error())
				we, d := proxyStructured(t, err)
				texts = append(texts, string(we.Data))
				want := proxy.ErrorData{Type: "auth_failure", Subtype: proxy.SubtypeCredentialRevoked, Server: "bench", Action: d.Action}
				if we.Code != proxy.CodeAuthFailure || d.Type != want.Type || d.Subtype != want.Subtype || d.Retryable || d.Server != "bench" ||
					!strings.Contains(d.Action, "Sign in again") || !strings.Contains(d.Action, "authkeeper login bench") {
					t.Errorf("call %d: code %d data %+v, want %+v", i, we.Code, d, want)
				}
			}
			if n := b.as.TokenRequests(t, "refresh_token"); n != 1 {
				t.Errorf("%d refresh attempts for a revoked grant over two calls, want 1", n)
			}
			if st := b.eng.Snapshot().Servers[0].State; st != engine.StateRevoked {
				t.Errorf("state %s, want revoked", st)
			}

			if err := b.eng.SignIn(ctx, "bench", false, nil); err != nil {
				t.Fatal(err)
			}
			sec.addFromKeychain(t)
			if got, err := proxyEcho(ctx, cs, "after"); err != nil || got != "after" {
				t.Fatalf("after sign-in, in the same session: %q, %v", got, err)
			}
			audit, err := os.ReadFile(filepath.Join(b.paths.StateDir, "audit.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			texts = append(texts, string(audit))
			for i, s := range texts {
				assertNoSecrets(t, fmt.Sprintf("what the caller saw (%d of %d)", i+1, len(texts)), s, sec.List()...)
			}
		})
	}
}

// TestProxyFiftyConcurrentRejectedCallsMakeOneRefresh: the access token is revoked at the AS and the
// refresh is slowed down, so that fifty concurrent calls all meet a 401: they cause exactly one token
// request, and every call succeeds on its replay.
func TestProxyFiftyConcurrentRejectedCallsMakeOneRefresh(t *testing.T) {
	b := newBench(t, benchOptions{AS: testbed.AuthServerOptions{Opaque: true}, JSON: true})
	cs := b.proxySession(t, nil)
	ctx := context.Background()
	if _, err := proxyEcho(ctx, cs, "warm"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(engine.MinRefreshGap) // past the keeper's guard against refreshing a just-issued token
	b.as.Revoke(t, proxyRecord(t).AccessToken)
	b.as.Fault(t, testbed.Fault{Endpoint: "token", Delay: 2 * time.Second})
	before := b.srv.Stats(t)
	refreshes := b.as.TokenRequests(t, "refresh_token")
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			got, err := proxyEcho(ctx, cs, fmt.Sprint(i))
			if err == nil && got != fmt.Sprint(i) {
				err = fmt.Errorf("echo %d returned %q", i, got)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a call failed: %v", err)
		}
	}
	if n := b.as.TokenRequests(t, "refresh_token") - refreshes; n != 1 {
		t.Errorf("%d token requests for 50 rejected calls, want 1", n)
	}
	if n := b.srv.Stats(t).Unauthorized - before.Unauthorized; n != 50 {
		t.Errorf("the server answered %d 401s, want 50 (every call met the revoked token once)", n)
	}
}

// TestProxyStreamsEventsAsTheServerSendsThem: progress notifications of a countdown (five, 300 ms
// apart) reach the client one by one while the call runs — over the POST's event stream in SSE mode,
// over the session's GET stream from the Go server in JSON mode — not all at once at the end.
func TestProxyStreamsEventsAsTheServerSendsThem(t *testing.T) {
	for _, v := range proxyVariants {
		if v.ts && v.json {
			continue // the TS SDK drops notifications in JSON mode (testbed/mcpgo.go)
		}
		t.Run(v.name, func(t *testing.T) {
			b := newBench(t, benchOptions{TS: v.ts, JSON: v.json})
			var (
				mu      sync.Mutex
				arrived []time.Duration
				start   time.Time
			)
			cs := b.proxySession(t, &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, _ *mcp.ProgressNotificationClientRequest) {
				mu.Lock()
				arrived = append(arrived, time.Since(start))
				mu.Unlock()
			}})
			params := &mcp.CallToolParams{Name: "countdown", Arguments: map[string]any{"n": 5, "interval_ms": 300}}
			params.SetProgressToken("p")
			mu.Lock()
			start = time.Now()
			mu.Unlock()
			if _, err := cs.CallTool(context.Background(), params); err != nil {
				t.Fatal(err)
			}
			done := time.Since(start)
			var got []time.Duration
			// The client runs notification handlers concurrently with the call's return: give the last
			// one a moment.
			for wait := time.Now().Add(2 * time.Second); len(got) < 5 && time.Now().Before(wait); time.Sleep(10 * time.Millisecond) {
				mu.Lock()
				got = slices.Clone(arrived)
				mu.Unlock()
			}
			if len(got) != 5 {
				t.Fatalf("%d notifications, want 5", len(got))
			}
			t.Logf("arrivals %v, result at %v", got, done)
			if done-got[0] < 900*time.Millisecond {
				t.Errorf("first event %v, result %v: events were held back", got[0], done)
			}
			for i := 1; i < len(got); i++ {
				if gap := got[i] - got[i-1]; gap < 150*time.Millisecond {
					t.Errorf("events %d and %d arrived %v apart, sent 300 ms apart", i, i+1, gap)
				}
			}
		})
	}
}

// TestProxyStepUpAsksForTheWiderScopeAndTheSameSessionRecovers: the server needs mcp:write, which the
// current token lacks: the call fails with a sign_in_required auth_failure naming the wider scopes,
// the server needs a sign-in, and after it the same session's calls succeed with the wider token.
func TestProxyStepUpAsksForTheWiderScopeAndTheSameSessionRecovers(t *testing.T) {
	b := newBench(t, benchOptions{Scopes: []string{"mcp:read", "mcp:write"}})
	ctx := context.Background()
	// A narrower sign-in, as when the server's requirements grew after the user signed in.
	b.rebind(t, "", func(r *keychain.Record) { r.Binding.RequestedScopes = []string{"mcp:read", "offline_access"} })
	cs := b.proxySession(t, nil)
	if err := b.eng.SignIn(ctx, "bench", false, nil); err != nil {
		t.Fatal(err)
	}
	forbidden := b.srv.Stats(t).Forbidden
	_, err := proxyEcho(ctx, cs, "x")
	if err == nil {
		t.Fatal("a call with too little scope succeeded")
	}
	we, d := proxyStructured(t, err)
	if we.Code != proxy.CodeAuthFailure || d.Subtype != proxy.SubtypeSignInRequired || d.Retryable || !slices.Contains(d.Scopes, "mcp:write") ||
		!strings.Contains(d.Action, "mcp:write") {
		t.Fatalf("code %d data %+v, want sign_in_required naming mcp:write", we.Code, d)
	}
	if n := b.srv.Stats(t).Forbidden - forbidden; n != 1 {
		t.Errorf("%d 403s, want 1", n)
	}
	if st := b.eng.Snapshot().Servers[0]; st.State != engine.StateNeedsSignIn || !strings.Contains(st.Message, "mcp:write") {
		t.Errorf("state %s (%s), want needs-sign-in naming the scope", st.State, st.Message)
	}
	if err := b.eng.SignIn(ctx, "bench", false, nil); err != nil {
		t.Fatal(err)
	}
	w, err := proxyWhoami(ctx, cs)
	if err != nil {
		t.Fatalf("after the step-up sign-in, in the same session: %v", err)
	}
	if !slices.Contains(w.Scopes, "mcp:write") {
		t.Errorf("token scopes %v lack mcp:write", w.Scopes)
	}
}

// TestProxyTransientASFailuresAreRetryable: with the token expired and the AS down or rate-limiting, a
// call fails with a retryable upstream_unavailable or rate_limited auth_failure (rate_limited carries
// the AS's Retry-After), and once the AS is back the same session's calls succeed.
func TestProxyTransientASFailuresAreRetryable(t *testing.T) {
	for _, c := range []struct {
		name    string
		subtype string
		fail    func(*testing.T, *bench)
		heal    func(*testing.T, *bench)
	}{
		{"as down", proxy.SubtypeUpstreamUnavailable, func(t *testing.T, b *bench) { b.as.Stop(t) }, func(t *testing.T, b *bench) { b.as.Start(t) }},
		{"as 429", proxy.SubtypeRateLimited,
			func(t *testing.T, b *bench) {
				b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 429, RetryAfter: "7", Count: -1})
			},
			func(t *testing.T, b *bench) { b.as.ClearFaults(t) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBench(t, benchOptions{AS: testbed.AuthServerOptions{AccessTokenTTL: 2 * time.Second}})
			cs := b.proxySession(t, nil)
			ctx := context.Background()
			c.fail(t, b)
			time.Sleep(2500 * time.Millisecond) // the 2-second token expires; nothing can renew it
			_, err := proxyEcho(ctx, cs, "x")
			if err == nil {
				t.Fatal("a call succeeded with an expired token and no AS")
			}
			we, d := proxyStructured(t, err)
			if we.Code != proxy.CodeAuthFailure || d.Subtype != c.subtype || !d.Retryable {
				t.Errorf("code %d data %+v, want a retryable %s", we.Code, d, c.subtype)
			}
			if c.subtype == proxy.SubtypeRateLimited && d.RetryAfter != 7 {
				t.Errorf("retry_after_seconds %d, want the AS's 7", d.RetryAfter)
			}
			c.heal(t, b)
			if err := b.eng.Refresh(ctx, "bench", "test"); err != nil {
				t.Fatal(err)
			}
			if _, err := proxyEcho(ctx, cs, "y"); err != nil {
				t.Fatalf("after the AS came back, in the same session: %v", err)
			}
		})
	}
}
