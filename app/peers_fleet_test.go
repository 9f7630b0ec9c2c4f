//go:build linux

package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/fleet"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// fleetBench is three engines sharing one grant through a real three-member etcd cluster, signed in
// at the real AS (oidc-provider: short-lived opaque access tokens, rotating refresh tokens with reuse
// detection) to a real MCP server that introspects every token.
type fleetBench struct {
	cluster *testbed.EtcdCluster
	as      *testbed.AuthServer
	srv     *testbed.MCPServer
	store   string // the etcd:// URL
	key     string // the fleet key line
	engines []*engine.Engine
	ids     []string
	browser *testbed.Browser

	mu     sync.Mutex
	events []fleetEvent // refreshed and adopted events, from every instance, in arrival order
}

type fleetEvent struct {
	at       time.Time
	instance string
	kind     engine.EventKind
}

func newFleetBench(t *testing.T, ttl time.Duration, n int) *fleetBench {
	t.Helper()
	fb := &fleetBench{cluster: testbed.StartEtcdCluster(t, 3),
		as: testbed.NewAuthServer(t, testbed.AuthServerOptions{AccessTokenTTL: ttl, Opaque: true})}
	mo := testbed.MCPServerOptions{Issuer: fb.as.Issuer, RequiredScopes: []string{"mcp:read"}, Opaque: true}
	mo.IntrospectionClientID, mo.IntrospectionClientSecret = fb.as.IntrospectionClient()
	fb.srv = testbed.GoMCPServer(t, mo)
	fb.store = fb.cluster.StoreURL("/fleet-test")
	var err error
	if fb.key, err = fleet.NewKeyLine("k1"); err != nil {
		t.Fatal(err)
	}
	fb.browser = testbed.NewBrowser(t, testbed.BrowserOptions{})
	for range n {
		fb.add(t)
	}
	return fb
}

// add starts one more engine of the fleet, "boxN", on directories of its own.
func (fb *fleetBench) add(t *testing.T) *engine.Engine {
	t.Helper()
	id := fmt.Sprintf("box%d", len(fb.engines)+1)
	getenv := func(k string) string {
		if k == envFleetKey {
			return fb.key
		}
		return ""
	}
	eng := startEngine(t, engine.Config{Paths: tempPaths(t), ProxyAddr: "127.0.0.1:0", Opener: fb.browser, StoreKind: fb.store,
		OpenFleet: fleetOpener(env{getenv: getenv}, fleetOpts{instance: id})})
	fb.engines, fb.ids = append(fb.engines, eng), append(fb.ids, id)
	_, ch, cancel := eng.Subscribe()
	t.Cleanup(cancel)
	go func() {
		for ev := range ch {
			if ev.Kind == engine.EventRefreshed || ev.Kind == engine.EventDeadlineRefresh || ev.Kind == engine.EventAdopted {
				fb.mu.Lock()
				fb.events = append(fb.events, fleetEvent{at: ev.Time, instance: id, kind: ev.Kind})
				fb.mu.Unlock()
			}
		}
	}()
	return eng
}

// leader is the index of the engine that refreshes "bench" now, or -1.
func (fb *fleetBench) leader() int {
	for i, eng := range fb.engines {
		if eng == nil {
			continue
		}
		for _, st := range eng.Snapshot().Servers {
			if st.Name == "bench" && st.Fleet != nil && st.Fleet.Leading {
				return i
			}
		}
	}
	return -1
}

func (fb *fleetBench) waitLeader(t *testing.T, within time.Duration, not int) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if l := fb.leader(); l >= 0 && l != not {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("no instance leads the grant after %s", within)
		}
		time.Sleep(50 * time.Millisecond) // the elections run in other goroutines and in etcd
	}
}

// states describes every running instance's view of "bench", for failure messages.
func (fb *fleetBench) states() string {
	var b strings.Builder
	for i, eng := range fb.engines {
		if eng == nil {
			continue
		}
		for _, st := range eng.Snapshot().Servers {
			fmt.Fprintf(&b, "%s: %s cause=%s next=%s/%s last=%+v fleet=%+v msg=%q\n", fb.ids[i], st.State, st.Cause,
				st.Next.Format("15:04:05.000"), st.NextTrigger, st.Last, st.Fleet, st.Message)
		}
	}
	return b.String()
}

// refreshers counts the refreshed events per instance since mark, the adoptions, and the refresh
// grants the AS received since it counted asBase. The AS counts a refresh when its request arrives;
// the instance publishes its event only after the new tokens are persisted, so a refresh still on its
// way is in the AS's count and not yet in the events: refreshers waits (up to 5 s) for the events to
// catch up with the AS before it returns. A refresh the AS saw and no running instance reported, or
// one by another instance, still shows in what it returns.
func (fb *fleetBench) refreshers(t *testing.T, since time.Time, asBase int) (by map[string]int, adopted, atAS int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		by, adopted = fb.eventsSince(since)
		atAS = fb.as.TokenRequests(t, "refresh_token") - asBase
		total := 0
		for _, n := range by {
			total += n
		}
		if total >= atAS || time.Now().After(deadline) {
			return by, adopted, atAS
		}
		time.Sleep(50 * time.Millisecond) // the events come through each engine's event hub
	}
}

func (fb *fleetBench) eventsSince(since time.Time) (map[string]int, int) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	by, adopted := map[string]int{}, 0
	for _, ev := range fb.events {
		if ev.at.Before(since) {
			continue
		}
		if ev.kind == engine.EventAdopted {
			adopted++
			continue
		}
		by[ev.instance]++
	}
	return by, adopted
}

// agents opens one Go SDK session through each running instance's proxy.
func (fb *fleetBench) agents(t *testing.T) []*mcp.ClientSession {
	t.Helper()
	var out []*mcp.ClientSession
	for _, eng := range fb.engines {
		if eng == nil {
			out = append(out, nil)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "fleet-agent", Version: "1"}, nil).Connect(ctx,
			&mcp.StreamableClientTransport{Endpoint: eng.ProxyEndpoint("bench")}, nil)
		cancel()
		if err != nil {
			t.Fatalf("connect through the proxy: %v", err)
		}
		t.Cleanup(func() { cs.Close() })
		out = append(out, cs)
	}
	return out
}

// callFor calls echo through every session in turn for d and returns the calls made and the failures.
func callFor(sessions []*mcp.ClientSession, d time.Duration) (calls int, failed []error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for i, cs := range sessions {
			if cs == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out, err := proxyEcho(ctx, cs, "hi")
			cancel()
			calls++
			if err == nil && out != "hi" {
				err = errors.New("wrong echo")
			}
			if err != nil {
				failed = append(failed, fmt.Errorf("via instance %d: %w", i+1, err))
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return calls, failed
}

func (fb *fleetBench) assertNoReuse(t *testing.T) {
	t.Helper()
	events := fb.as.Events(t)
	if n := countPrefix(events, "refresh_token.reused") + countPrefix(events, "grant.revoked"); n != 0 {
		t.Fatalf("the AS saw a refresh token twice (%d reuse/revocation events)", n)
	}
}

// TestFleetOfThreeSharesOneGrantWithOneRefresherAtATime runs three engines on one etcd cluster and
// one grant: one sign-in, two instances that join it without one, agents calling through all three
// proxies. Exactly one instance refreshes (the AS's count of refresh grants equals that instance's
// refreshes, the others only adopt); when it leaves, another takes over within the lease; with the
// cluster's quorum lost no instance refreshes, calls succeed while the token lives and then get a
// retryable error, and refreshing resumes when the quorum returns. The AS never sees a refresh token
// twice, and etcd holds no token in plain text.
func TestFleetOfThreeSharesOneGrantWithOneRefresherAtATime(t *testing.T) {
	t.Parallel() // its peers are its own (no environment), and it mostly waits on tokens expiring
	const ttl = 5 * time.Second
	fb := newFleetBench(t, ttl, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := fb.engines[0].Add(ctx, engine.AddRequest{Name: "bench", URL: fb.srv.URL}); err != nil {
		t.Fatalf("add on box1: %v", err)
	}
	codes := fb.as.TokenRequests(t, "authorization_code")
	if err := fb.engines[1].Add(ctx, engine.AddRequest{Name: "bench", URL: fb.srv.URL + "/other"}); err == nil ||
		!strings.Contains(err.Error(), "not "+fb.srv.URL+"/other") {
		t.Errorf("joining a grant under another URL: %v; want an error naming both", err)
	}
	for _, eng := range fb.engines[1:] {
		if err := eng.Add(ctx, engine.AddRequest{Name: "bench", URL: fb.srv.URL}); err != nil {
			t.Fatalf("add on another box: %v", err)
		}
	}
	if n := fb.as.TokenRequests(t, "authorization_code") - codes; n != 0 {
		t.Fatalf("joining the fleet's grant signed in %d more time(s)", n)
	}
	sessions := fb.agents(t)

	t.Run("steady", func(t *testing.T) {
		leader := fb.waitLeader(t, 10*time.Second, -1)
		mark, refreshes := time.Now(), fb.as.TokenRequests(t, "refresh_token")
		calls, failed := callFor(sessions, ttl+time.Second)
		if len(failed) > 0 {
			t.Fatalf("%d of %d calls failed: %v", len(failed), calls, failed[0])
		}
		by, adopted, atAS := fb.refreshers(t, mark, refreshes)
		if len(by) != 1 || by[fb.ids[leader]] == 0 || by[fb.ids[leader]] != atAS {
			t.Fatalf("refreshes per instance %v, %d at the AS; want them all from the leader %s", by, atAS, fb.ids[leader])
		}
		if adopted < 2*atAS-2 { // each refresh is adopted by the two others (the last may still be on its way)
			t.Errorf("%d adoptions for %d refreshes", adopted, atAS)
		}
		st := fb.engines[(leader+1)%3].Snapshot()
		if st.Fleet == nil || len(st.Fleet.Members) != 3 || st.Servers[0].Fleet == nil ||
			st.Servers[0].Fleet.Owner != fb.ids[leader] || len(st.Servers[0].Fleet.Serving) != 3 {
			t.Errorf("a follower's fleet status: %+v / %+v", st.Fleet, st.Servers[0].Fleet)
		}
		t.Logf("steady: %d calls, %d refreshes by %s, %d adoptions", calls, atAS, fb.ids[leader], adopted)
	})

	t.Run("follower-401", func(t *testing.T) {
		// The MCP server refuses a follower's token (revoked at the AS): the follower asks the
		// refresher for a refresh through etcd instead of refreshing, and the agent's call succeeds
		// with the refresher's new token.
		leader := fb.waitLeader(t, 10*time.Second, -1)
		follower := (leader + 1) % 3
		tok, err := fb.engines[follower].Token(ctx, "bench")
		if err != nil {
			t.Fatal(err)
		}
		mark, refreshes := time.Now(), fb.as.TokenRequests(t, "refresh_token")
		fb.as.Revoke(t, tok)
		out, err := proxyEcho(ctx, sessions[follower], "after a 401")
		if err != nil || out != "after a 401" {
			t.Fatalf("a call through the follower after its token was refused: %q, %v", out, err)
		}
		by, _, n := fb.refreshers(t, mark, refreshes)
		if n < 1 || by[fb.ids[follower]] != 0 || by[fb.ids[leader]] != n {
			t.Fatalf("after the follower's 401: %d refreshes at the AS, per instance %v; want them all from the leader %s", n, by, fb.ids[leader])
		}
		if again, err := fb.engines[follower].Token(ctx, "bench"); err != nil || again == tok {
			t.Fatalf("the follower still hands out the refused token (%v)", err)
		}
	})

	t.Run("takeover", func(t *testing.T) {
		old := fb.leader()
		fb.engines[old].Close() // a refresh in flight finishes first; none starts after
		left, refreshes := time.Now(), fb.as.TokenRequests(t, "refresh_token")
		fb.engines[old], sessions[old] = nil, nil
		next := fb.waitLeader(t, 10*time.Second, old)
		took := time.Since(left)
		calls, failed := callFor(sessions, ttl)
		if len(failed) > 0 {
			t.Fatalf("%d of %d calls through the surviving instances failed: %v", len(failed), calls, failed[0])
		}
		by, _, atAS := fb.refreshers(t, left, refreshes)
		if len(by) != 1 || by[fb.ids[next]] == 0 || by[fb.ids[next]] != atAS {
			t.Fatalf("refreshes after the leader left: %v, %d at the AS; want all from the new leader %s", by, atAS, fb.ids[next])
		}
		t.Logf("takeover: %s leads %s after %s left; %d calls", fb.ids[next], took.Round(time.Millisecond), fb.ids[old], calls)
	})

	t.Run("quorum-lost", func(t *testing.T) {
		ectx, ecancel := context.WithTimeout(ctx, 10*time.Second)
		leaderMember, err := fb.cluster.Leader(ectx)
		ecancel()
		if err != nil {
			t.Fatal(err)
		}
		fb.cluster.Member(leaderMember).Stop()
		second := (leaderMember + 1) % 3
		fb.cluster.Member(second).Stop()
		lost, refreshes := time.Now(), fb.as.TokenRequests(t, "refresh_token")
		// The token in memory serves until it expires: calls succeed for a while, then get a retryable
		// fleet_unavailable (never a sign-in prompt), and no instance refreshes.
		var ok, retryable int
		for time.Since(lost) < ttl+3*time.Second {
			for _, cs := range sessions {
				if cs == nil {
					continue
				}
				cctx, ccancel := context.WithTimeout(ctx, 15*time.Second)
				_, err := proxyEcho(cctx, cs, "hi")
				ccancel()
				switch {
				case err == nil:
					ok++
				case strings.Contains(err.Error(), "fleet") || strings.Contains(err.Error(), "retry"):
					retryable++
				default:
					t.Fatalf("without quorum a call failed with %v; want success or a retryable error", err)
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		if n := fb.as.TokenRequests(t, "refresh_token") - refreshes; n != 0 {
			t.Fatalf("%d refreshes without quorum", n)
		}
		if ok == 0 || retryable == 0 {
			t.Errorf("without quorum: %d calls served, %d retryable errors; want both (the token served, then expired)", ok, retryable)
		}
		back := time.Now()
		fb.cluster.Member(leaderMember).Start()
		fb.cluster.Member(second).Start()
		deadline := time.Now().Add(30 * time.Second)
		for {
			cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
			_, errA := proxyEcho(cctx, anySession(sessions), "hi")
			ccancel()
			if errA == nil && fb.as.TokenRequests(t, "refresh_token") > refreshes {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no refresh 30 s after the quorum returned (last call: %v)\n%s", errA, fb.states())
			}
			time.Sleep(200 * time.Millisecond)
		}
		calls, failed := callFor(sessions, 2*time.Second)
		if len(failed) > 0 {
			t.Fatalf("after the quorum returned %d of %d calls failed: %v", len(failed), calls, failed[0])
		}
		t.Logf("quorum lost: %d served, %d retryable; serving again %s after it returned", ok, retryable, time.Since(back).Round(time.Millisecond))
	})

	fb.assertNoReuse(t)
	t.Run("no-plaintext-in-etcd", func(t *testing.T) {
		var live *engine.Engine
		for _, eng := range fb.engines {
			if eng != nil {
				live = eng
			}
		}
		tok, err := live.Token(ctx, "bench")
		if err != nil {
			t.Fatal(err)
		}
		if files := fb.cluster.ScanDataDirs([]byte(tok)); len(files) > 0 {
			t.Errorf("the access token is in etcd's files in plain text: %v", files)
		}
	})
}

func anySession(sessions []*mcp.ClientSession) *mcp.ClientSession {
	for _, cs := range sessions {
		if cs != nil {
			return cs
		}
	}
	return nil
}

// TestDoctorChecksAFleetStore: with an etcd:// store, doctor's first check opens the fleet's store —
// a quorum answers, the fleet key loads — and fails, naming the fix, without the key.
func TestDoctorChecksAFleetStore(t *testing.T) {
	cluster := testbed.StartEtcdCluster(t, 3)
	privateHome(t)
	store := cluster.StoreURL("/doctor-test")
	key, err := fleet.NewKeyLine("k1")
	if err != nil {
		t.Fatal(err)
	}
	check := func() (string, string) {
		_, out, _ := runCLI(t, "doctor", "--json", "--store", store)
		var doc struct {
			Checks []struct{ Check, Status, Detail, Fix string }
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Checks) == 0 {
			t.Fatalf("doctor --json: %v\n%s", err, out)
		}
		c := doc.Checks[0]
		if c.Check != "fleet store" {
			t.Fatalf("first check %q, want the fleet store", c.Check)
		}
		return c.Status, c.Detail + " " + c.Fix
	}
	t.Setenv(envFleetKey, "")
	t.Setenv(envFleetKeyFile, "")
	if status, text := check(); status != string(checkFail) || !strings.Contains(text, "fleet key") {
		t.Errorf("without a key: %s %q; want a failure naming the fleet key", status, text)
	}
	t.Setenv(envFleetKey, key)
	if status, text := check(); status != string(checkOK) {
		t.Errorf("with the key: %s %q; want ok", status, text)
	}
}

// TestFleetNeverRefreshesAfterAnotherInstancesUnansweredRefreshStart: an instance recorded the start
// of a refresh and died before saving the answer, so the stored refresh token may be spent. The
// instances that take the grant over never send it: the new refresher asks for a sign-in once, a
// follower's asks are refused, and the AS sees no refresh at all — until a sign-in replaces the grant,
// which every instance then adopts.
func TestFleetNeverRefreshesAfterAnotherInstancesUnansweredRefreshStart(t *testing.T) {
	t.Parallel() // as above
	const ttl = 4 * time.Second
	fb := newFleetBench(t, ttl, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := fb.engines[0].Add(ctx, engine.AddRequest{Name: "bench", URL: fb.srv.URL}); err != nil {
		t.Fatalf("add: %v", err)
	}
	fb.engines[0].Close()
	fb.engines[0] = nil
	// The dead refresher: elected, it records a refresh's start, then goes away without an answer.
	keys, err := fleet.LoadKeys("", fb.key)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := fleet.ParseURL(fb.store)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Keys, cfg.Instance = keys, "ghost"
	ghost, err := fleet.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ghost.Join("bench")
	for deadline := time.Now().Add(10 * time.Second); !ghost.Leading("bench"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the ghost never led")
		}
	}
	rec, err := ghost.Get("bench")
	if err != nil {
		t.Fatal(err)
	}
	rec.RefreshStarted = time.Now()
	if _, err := ghost.Put("bench", rec); err != nil {
		t.Fatal(err)
	}
	ghost.Close()
	refreshes := fb.as.TokenRequests(t, "refresh_token")

	for range 2 {
		if err := fb.add(t).Add(ctx, engine.AddRequest{Name: "bench", URL: fb.srv.URL}); err != nil {
			t.Fatalf("join: %v", err)
		}
	}
	leader := fb.waitLeader(t, 10*time.Second, -1)
	follower := 3 - leader // engines 1 and 2
	sessions := fb.agents(t)
	time.Sleep(ttl + 2*time.Second) // past the token's expiry: everyone would refresh now
	st := fb.engines[leader].Snapshot().Servers[0]
	if st.State != engine.StateNeedsSignIn || st.Cause != engine.CauseRefreshInterrupted {
		t.Fatalf("the new refresher: %s/%s %q; want needs-sign-in, refresh interrupted\n%s", st.State, st.Cause, st.Message, fb.states())
	}
	if _, err := proxyEcho(ctx, sessions[follower], "hi"); err == nil {
		t.Error("a call through the follower with an expired token succeeded")
	}
	if n := fb.as.TokenRequests(t, "refresh_token") - refreshes; n != 0 {
		t.Fatalf("%d refreshes of a refresh token another instance may have spent", n)
	}
	if err := fb.engines[follower].SignIn(ctx, "bench", false, nil); err != nil {
		t.Fatalf("sign in again on the follower: %v", err)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err1 := proxyEcho(ctx, sessions[leader], "hi")
		_, err2 := proxyEcho(ctx, sessions[follower], "hi")
		if err1 == nil && err2 == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a sign-in on the follower: %v / %v\n%s", err1, err2, fb.states())
		}
	}
	fb.assertNoReuse(t)
}
