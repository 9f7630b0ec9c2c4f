package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A JSON-RPC auth error in a 200 body is weak evidence of a rejected token (docs/proxy.md, "The 401 /
// refresh / replay rule"): a gateway may mean the token, but a server whose own downstream credential
// is bad says the same with any token. These tests put the real Go SDK server behind gatewayFront, a
// fixture that answers such errors for a chosen method and token, and check that the proxy refreshes
// at most once, never sends a tools/call twice, and never marks a good grant revoked on weak evidence.

// gatewayRule picks the requests gatewayFront answers with a JSON-RPC error in a 200 body.
type gatewayRule struct {
	method string // the JSON-RPC method it applies to
	token  string // the only bearer token it applies to; "" every token
	// late forwards the request first, so the server runs it (a tool's handler runs), and answers the
	// error in place of the server's answer: a server whose tool reached its own failing downstream.
	late    bool
	code    int
	message string
}

// gatewayFront stands in for a gateway, or a server wrapping another API, in front of the real Go SDK
// MCP server: it forwards everything to it, except that a POST matching its rule gets the rule's
// JSON-RPC error in a 200 application/json body. Safe for concurrent use.
type gatewayFront struct {
	rp       *httputil.ReverseProxy
	host     string
	rule     atomic.Pointer[gatewayRule]
	refused  atomic.Int32 // answers replaced by the rule's error
	toolRuns atomic.Int32 // tools/call the server answered with a result: each ran the tool's handler once
}

func (g *gatewayFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Host = g.host
	if r.Method != http.MethodPost {
		g.rp.ServeHTTP(w, r) // the GET stream, DELETE
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	_ = json.Unmarshal(body, &msg) // a batch or a response matches no rule
	rule := g.rule.Load()
	match := rule != nil && msg.Method == rule.method &&
		(rule.token == "" || r.Header.Get("Authorization") == "Bearer "+rule.token)
	if match && !rule.late {
		g.refuse(w, msg.ID, rule)
		return
	}
	if msg.Method != "tools/call" && !match {
		g.rp.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder() // the server answers JSON (bench JSON mode): read it whole
	g.rp.ServeHTTP(rec, r)
	if msg.Method == "tools/call" && rec.Code == http.StatusOK && bytes.Contains(rec.Body.Bytes(), []byte(`"result"`)) {
		g.toolRuns.Add(1)
	}
	if match {
		g.refuse(w, msg.ID, rule)
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func (g *gatewayFront) refuse(w http.ResponseWriter, id json.RawMessage, rule *gatewayRule) {
	g.refused.Add(1)
	data, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id,
		"error": map[string]any{"code": rule.code, "message": rule.message}})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(data)
}

// newGatewayBench is a bench (Go SDK server, JSON answers) whose server sits behind a gatewayFront,
// with its tokens bound to the front's origin, and the token the engine holds now.
func newGatewayBench(t *testing.T) (*bench, *gatewayFront, string) {
	t.Helper()
	b := newBench(t, benchOptions{JSON: true})
	upstream, _ := url.Parse(b.srv.URL)
	origin := &url.URL{Scheme: upstream.Scheme, Host: upstream.Host} // the front's /mcp is the server's
	g := &gatewayFront{rp: httputil.NewSingleHostReverseProxy(origin), host: upstream.Host}
	front := httptest.NewServer(g)
	t.Cleanup(front.Close)
	b.rebind(t, front.URL+"/mcp", func(r *keychain.Record) {
		r.Binding.Resource = front.URL + "/mcp"
		// Refresh without `resource` (the Entra fallback), so the AS keeps issuing for the granted
		// resource — the real server behind the front — instead of refusing the front's URL.
		r.Binding.OmitResource = true
	})
	tok, err := b.eng.Token(t.Context(), "bench")
	if err != nil {
		t.Fatal(err)
	}
	return b, g, tok
}

// gatewayError returns the JSON-RPC error a call failed with, or fails the test.
func gatewayError(t *testing.T, err error) *jsonrpc.Error {
	t.Helper()
	var we *jsonrpc.Error
	if !errors.As(err, &we) {
		t.Fatalf("call error %v (%T), want the server's JSON-RPC error", err, err)
	}
	return we
}

// TestProxyWeakRejectionOfAToolsListRefreshesOnceAndReplays: a gateway that rejects the old token in a
// 200 body on tools/list still gets what the heuristic is for — one refresh and one replay, and the
// agent's call succeeds.
func TestProxyWeakRejectionOfAToolsListRefreshesOnceAndReplays(t *testing.T) {
	b, g, old := newGatewayBench(t)
	g.rule.Store(&gatewayRule{method: "tools/list", token: old, code: -32001, message: "Unauthorized: invalid token"})
	cs := b.proxySession(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	before := b.as.TokenRequests(t, "refresh_token")
	res, err := cs.ListTools(ctx, nil)
	if err != nil || len(res.Tools) == 0 {
		t.Fatalf("tools/list through a gateway that rejected the old token: %v, %+v", err, res)
	}
	if n := b.as.TokenRequests(t, "refresh_token") - before; n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	if n := g.refused.Load(); n != 1 {
		t.Errorf("the gateway refused %d requests, want 1 (the replay carries the new token)", n)
	}
}

// TestProxyWeakRejectionOfAToolCallIsNeverReplayed: the tool ran before the answer said
// "Unauthorized", so the call is not sent again. The token is refreshed once, the server's answer goes
// back unchanged, and the next call succeeds with the new token.
func TestProxyWeakRejectionOfAToolCallIsNeverReplayed(t *testing.T) {
	b, g, old := newGatewayBench(t)
	g.rule.Store(&gatewayRule{method: "tools/call", token: old, late: true, code: -32001, message: "Unauthorized"})
	cs := b.proxySession(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	before := b.as.TokenRequests(t, "refresh_token")
	_, err := proxyEcho(ctx, cs, "once")
	if n := g.toolRuns.Load(); n != 1 {
		t.Errorf("the tool ran %d times for one call, want 1", n)
	}
	if we := gatewayError(t, err); we.Code != -32001 || we.Message != "Unauthorized" {
		t.Errorf("the call failed with %d %q, want the server's own -32001 Unauthorized", we.Code, we.Message)
	}
	if n := b.as.TokenRequests(t, "refresh_token") - before; n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	if tok, err := b.eng.Token(ctx, "bench"); err != nil || tok == old {
		t.Fatalf("after the weak rejection the engine holds the old token (%v)", err)
	}
	if got, err := proxyEcho(ctx, cs, "again"); err != nil || got != "again" {
		t.Fatalf("the next call: %q, %v; want it to succeed with the new token", got, err)
	}
	if n := g.toolRuns.Load(); n != 2 {
		t.Errorf("the tool ran %d times for two calls, want 2", n)
	}
	if n := b.as.TokenRequests(t, "refresh_token") - before; n != 1 {
		t.Errorf("%d refreshes in all, want 1", n)
	}
}

// TestProxyServerWhoseOwnDownstreamFailsKeepsItsGrant: a server wrapping GitHub answers every call
// "GitHub API: 401 Unauthorized" because its own credential is bad, whatever token it gets. Over
// several calls that costs at most one refresh, every call runs once (tools/call) and gets the server's
// answer, and the grant is never marked revoked: other calls keep working.
func TestProxyServerWhoseOwnDownstreamFailsKeepsItsGrant(t *testing.T) {
	for _, c := range []struct {
		name   string
		method string
		late   bool
		call   func(context.Context, *mcp.ClientSession) error
		// seen is how many answers the front replaces for n calls: a tools/list
		// is replayed once (it is safe to), a tools/call never.
		seen func(n int) int
	}{
		{"tools/call", "tools/call", true,
			func(ctx context.Context, cs *mcp.ClientSession) error { _, err := proxyEcho(ctx, cs, "x"); return err },
			func(n int) int { return n }},
		{"tools/list", "tools/list", false,
			func(ctx context.Context, cs *mcp.ClientSession) error { _, err := cs.ListTools(ctx, nil); return err },
			func(n int) int { return n + 1 }},
	} {
		t.Run(strings.ReplaceAll(c.name, "/", "_"), func(t *testing.T) {
			b, g, _ := newGatewayBench(t)
			g.rule.Store(&gatewayRule{method: c.method, late: c.late, code: -32603, message: "GitHub API: 401 Unauthorized"})
			cs := b.proxySession(t, nil)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			before := b.as.TokenRequests(t, "refresh_token")
			const calls = 4
			for i := range calls {
				err := c.call(ctx, cs)
				if n := g.toolRuns.Load(); c.late && n != int32(i+1) {
					t.Errorf("after %d calls the tool ran %d times, want %d", i+1, n, i+1)
				}
				if we := gatewayError(t, err); we.Code != -32603 || we.Message != "GitHub API: 401 Unauthorized" {
					t.Fatalf("call %d failed with %d %q, want the server's own answer", i+1, we.Code, we.Message)
				}
			}
			if n := b.as.TokenRequests(t, "refresh_token") - before; n > 1 {
				t.Errorf("%d refreshes over %d calls, want at most 1", n, calls)
			}
			if n := int(g.refused.Load()); n != c.seen(calls) {
				t.Errorf("the server answered %d requests, want %d", n, c.seen(calls))
			}
			if st := serverStatus(t, b.eng, "bench"); st.State == engine.StateRevoked || st.State == engine.StateNeedsSignIn {
				t.Fatalf("state %s (%s): a good grant was ended on weak evidence", st.State, st.Message)
			}
			g.rule.Store(nil) // the server's downstream recovers: the grant still works
			if got, err := proxyEcho(ctx, cs, "ok"); err != nil || got != "ok" {
				t.Errorf("a call after the downstream recovered: %q, %v", got, err)
			}
		})
	}
}

// TestProxyWeakEvidenceNeverEndsATokenNoRefreshCanRenew: a pasted static token cannot be put to the
// test by a refresh, and a JSON-RPC error in a 200 body is not enough to end it (a 401 would mark it
// revoked). The server's answer goes back unchanged, the AS is not asked, and the token keeps serving.
func TestProxyWeakEvidenceNeverEndsATokenNoRefreshCanRenew(t *testing.T) {
	b, g, tok := newGatewayBench(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv, err := b.eng.Server("bench") // the same front: newGatewayBench moved the grant there
	if err != nil {
		t.Fatal(err)
	}
	front := srv.URL
	if err := b.eng.Add(ctx, engine.AddRequest{Name: "static", URL: front, StaticToken: tok,
		StaticExpiry: time.Now().Add(time.Hour).Truncate(time.Second)}); err != nil {
		t.Fatal(err)
	}
	g.rule.Store(&gatewayRule{method: "tools/call", token: tok, late: true, code: -32001, message: "Unauthorized"})
	c := mcp.NewClient(&mcp.Implementation{Name: "proxy-test", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: b.eng.ProxyEndpoint("static")}, nil)
	if err != nil {
		t.Fatalf("connect through the proxy: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	before := b.as.TokenRequests(t, "refresh_token")
	for i := range 2 {
		_, err := proxyEcho(ctx, cs, "x")
		if we := gatewayError(t, err); we.Code != -32001 || we.Message != "Unauthorized" {
			t.Fatalf("call %d failed with %d %q, want the server's own -32001 Unauthorized", i+1, we.Code, we.Message)
		}
	}
	if n := g.toolRuns.Load(); n != 2 {
		t.Errorf("the tool ran %d times for two calls, want 2", n)
	}
	if n := b.as.TokenRequests(t, "refresh_token") - before; n != 0 {
		t.Errorf("%d refreshes for a static token", n)
	}
	if st := serverStatus(t, b.eng, "static"); st.State == engine.StateRevoked || st.State == engine.StateNeedsSignIn {
		t.Fatalf("state %s (%s): a static token was ended on weak evidence", st.State, st.Message)
	}
	g.rule.Store(nil)
	if got, err := proxyEcho(ctx, cs, "ok"); err != nil || got != "ok" {
		t.Errorf("a call once the server accepts again: %q, %v", got, err)
	}
}
