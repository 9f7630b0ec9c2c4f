package proxy

import (
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// TestProxyActsOnWeakEvidenceOnlyWhereItIsSafe pins the decision after a rejected token: strong
// evidence refreshes and replays; weak evidence (a JSON-RPC auth error in a 200 body) refreshes at most
// once per token, replays only a request that is safe to send twice, and is ignored for a token that a
// weak refresh already produced. Only strong evidence on the replay marks the server revoked.
func TestProxyActsOnWeakEvidenceOnlyWhereItIsSafe(t *testing.T) {
	for _, c := range []struct {
		name                 string
		ev                   evidence
		reissued, repeatable bool
		want                 step
	}{
		{"no evidence", noEvidence, false, true, passOn},
		{"strong", strongEvidence, false, false, refreshReplay},
		{"strong on a reissued token", strongEvidence, true, false, refreshReplay},
		{"weak, repeatable", weakEvidence, false, true, refreshReplay},
		{"weak, a tools/call", weakEvidence, false, false, refreshPassOn},
		{"weak on a reissued token", weakEvidence, true, true, passOn},
		{"weak on a reissued token, a tools/call", weakEvidence, true, false, passOn},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := firstStep(c.ev, c.reissued, c.repeatable); got != c.want {
				t.Errorf("firstStep = %d, want %d", got, c.want)
			}
		})
	}
	for ev, want := range map[evidence]bool{noEvidence: false, weakEvidence: false, strongEvidence: true} {
		if got := revokesAfterReplay(ev); got != want {
			t.Errorf("revokesAfterReplay(%d) = %v, want %v", ev, got, want)
		}
	}
}

// TestProxyNeverReplaysAToolCall pins which request bodies may be sent twice after weak evidence: any
// message or batch without a tools/call; never one with a tools/call, nor a body that does not parse.
func TestProxyNeverReplaysAToolCall(t *testing.T) {
	for _, c := range []struct {
		body string
		want bool
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, true},
		{`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`, true},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, true},
		{`[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"resources/read"}]`, true},
		{`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"x"}}`, false},
		{` {"method":"tools/call","jsonrpc":"2.0","id":"a"}`, false},
		{`[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call"}]`, false},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call"`, false},
		{`garbage`, false},
		{``, false},
	} {
		if got := repeatable([]byte(c.body)); got != c.want {
			t.Errorf("repeatable(%s) = %v, want %v", c.body, got, c.want)
		}
	}
}

// TestProxyRefreshesOnWeakEvidenceOncePerToken: weak evidence forces a refresh, but not against the
// token such a refresh produced (per server), not twice when a second request's weak answer arrives
// while the first one's refresh is in flight, and again once the token changed for another reason.
// Run with -race.
func TestProxyRefreshesOnWeakEvidenceOncePerToken(t *testing.T) {
	const list, call = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, `{"jsonrpc":"2.0","id":2,"method":"tools/call"}`
	ctx := t.Context()
	p := &proxy{}
	var refreshes atomic.Int32
	issue := func(tok string) func() (string, error) {
		return func() (string, error) { refreshes.Add(1); return tok, nil }
	}
	check := func(name, tok, body string, refresh func() (string, error), want step) {
		t.Helper()
		next, fresh, err := p.weakRefresh(ctx, name, tok, []byte(body), refresh)
		if err != nil || next != want || (next != passOn && fresh == "") {
			t.Errorf("weakRefresh(%s, %s): %d %q %v, want step %d", name, tok, next, fresh, err, want)
		}
	}
	check("a", "t1", list, issue("t2"), refreshReplay)
	check("a", "t2", call, issue("t3"), passOn) // t2 came from a weak refresh
	check("a", "t2", list, issue("t3"), passOn)
	check("b", "t2", call, issue("u1"), refreshPassOn) // another server's memory is its own
	check("a", "t5", call, issue("t6"), refreshPassOn) // a scheduled refresh moved a on: re-armed
	if n := refreshes.Load(); n != 3 {
		t.Errorf("%d refreshes, want 3", n)
	}
	if v, _ := p.weakRefreshed.Load("a"); *v.(*weakMemory).reissued != tokenSum(sha256.Sum256([]byte("t6"))) {
		t.Error("the memory does not hold the SHA-256 of the last reissued token")
	}

	// A caller that goes away while it waits for the lock gets its answer passed on.
	v, _ := p.weakRefreshed.Load("a")
	v.(*weakMemory).lock <- struct{}{}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if next, _, err := p.weakRefresh(gone, "a", "t9", []byte(list), issue("x")); next != passOn || err == nil {
		t.Errorf("a cancelled wait: %d %v, want passOn and the context's error", next, err)
	}
	<-v.(*weakMemory).lock
}

// TestProxyWeakAnswersAroundOneRefreshShareIt: request A's weak answer forces a refresh of t1; request
// B, sent with the t2 that refresh is adopting, gets its weak answer before A's refresh returned. B
// waits for it and passes its answer on instead of refreshing t2 again.
func TestProxyWeakAnswersAroundOneRefreshShareIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const list, call = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, `{"jsonrpc":"2.0","id":2,"method":"tools/call"}`
		p := &proxy{}
		var refreshes atomic.Int32
		inFlight, release := make(chan struct{}), make(chan struct{})
		var a, b step
		var wg sync.WaitGroup
		wg.Go(func() {
			a, _, _ = p.weakRefresh(t.Context(), "s", "t1", []byte(list), func() (string, error) {
				refreshes.Add(1)
				close(inFlight)
				<-release // the keeper has adopted t2 and is still saving it
				return "t2", nil
			})
		})
		<-inFlight
		wg.Go(func() {
			b, _, _ = p.weakRefresh(t.Context(), "s", "t2", []byte(call), func() (string, error) {
				refreshes.Add(1)
				return "t3", nil
			})
		})
		synctest.Wait() // B's weak answer has arrived: it waits, or (wrongly) refreshed already
		close(release)
		wg.Wait()
		if a != refreshReplay || b != passOn {
			t.Errorf("steps A %d, B %d; want refreshReplay, passOn", a, b)
		}
		if n := refreshes.Load(); n != 1 {
			t.Errorf("%d refreshes for two weak answers around one refresh, want 1", n)
		}
	})
}

// TestProxyWeighsRejections pins which answers are strong and which weak evidence of a rejected token.
func TestProxyWeighsRejections(t *testing.T) {
	authErr := `{"jsonrpc":"2.0","id":5,"error":{"code":-32603,"message":"GitHub API: 401 Unauthorized"}}`
	for _, c := range []struct {
		name, method string
		status       int
		header       http.Header
		body         string
		want         evidence
	}{
		{"401", http.MethodPost, http.StatusUnauthorized, nil, "", strongEvidence},
		{"403 invalid_token", http.MethodPost, http.StatusForbidden, http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}}, "", strongEvidence},
		{"403 insufficient_scope", http.MethodPost, http.StatusForbidden, http.Header{"Www-Authenticate": {`Bearer error="insufficient_scope"`}}, "", noEvidence},
		{"200 JSON auth error", http.MethodPost, http.StatusOK, http.Header{"Content-Type": {"application/json"}}, authErr, weakEvidence},
		{"200 JSON result", http.MethodPost, http.StatusOK, http.Header{"Content-Type": {"application/json"}}, `{"jsonrpc":"2.0","id":5,"result":{}}`, noEvidence},
		{"200 SSE auth error", http.MethodPost, http.StatusOK, http.Header{"Content-Type": {"text/event-stream"}}, "data: " + authErr + "\n\n", noEvidence},
		{"GET 200 JSON auth error", http.MethodGet, http.StatusOK, http.Header{"Content-Type": {"application/json"}}, authErr, noEvidence},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, _ := http.NewRequest(c.method, "http://127.0.0.1/mcp/x", nil)
			resp := &http.Response{StatusCode: c.status, Header: c.header, ContentLength: -1, Body: io.NopCloser(strings.NewReader(c.body))}
			if resp.Header == nil {
				resp.Header = http.Header{}
			}
			read, got := (&proxy{}).inspect(r, resp, new(bodyBuf))
			if got != c.want {
				t.Errorf("evidence %d, want %d", got, c.want)
			}
			if got == weakEvidence && string(read) != c.body {
				t.Errorf("read %q, want the whole body to pass on", read)
			}
		})
	}
}

// TestProxyRedirectErrorNeverEchoesACredential: the upstream_redirect message names scheme, host and
// path only; a Location that does not parse is not echoed at all, so a query carrying a token never
// reaches the agent.
func TestProxyRedirectErrorNeverEchoesACredential(t *testing.T) {
	target, _ := url.Parse("https://mcp.example.com/mcp")
	for _, c := range []struct{ loc, want string }{
		{"https://x.example/new?access_token=SECRET#frag", "https://x.example/new"},
		{"/moved?access_token=SECRET", "https://mcp.example.com/moved"},
		{"https://user:SECRET@x.example/new", "https://x.example/new"},
		{"https://x.example/%zz?access_token=SECRET", "an unparseable location"},
		{"https://user:SECRET@x.example/%zz", "an unparseable location"},
	} {
		got := redirectTarget(target, c.loc)
		if got != c.want || strings.Contains(got, "SECRET") {
			t.Errorf("redirectTarget(%q) = %q, want %q", c.loc, got, c.want)
		}
	}
}
