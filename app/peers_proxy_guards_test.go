package app

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// Where the proxy lets requests and tokens go: only callers on this machine with the key, never a
// token to another origin than its grant's (a cross-origin redirect, an edited URL), and no
// Authorization at all to a server without auth.

// TestProxyRefusesForeignHostOriginAndMissingOrWrongKey: DNS rebinding (a foreign Host), a web page (a
// foreign Origin), no key and a wrong key are all answered 403 without reaching the server, while the
// key in the path, in X-Authkeeper-Key or as a bearer token is accepted, a loopback Origin and a
// loopback Host on any port (a forward's, see peers_ssh_test.go) are fine, and the caller's own
// Authorization header never reaches the server.
func TestProxyRefusesForeignHostOriginAndMissingOrWrongKey(t *testing.T) {
	b := newBench(t, benchOptions{})
	base := b.eng.ProxyURL()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	key := b.eng.ProxyKey()
	wrong := strings.Repeat("0", len(key))
	withKey := b.eng.ProxyEndpoint("bench")
	noKey := base + "/mcp/bench"
	cases := []struct {
		name   string
		url    string
		header http.Header
		want   int
	}{
		{"key in path", withKey, nil, http.StatusOK},
		{"key in header", noKey, http.Header{proxy.ProxyKeyHeader: {key}}, http.StatusOK},
		{"key as bearer token", noKey, http.Header{"Authorization": {"Bearer " + key}}, http.StatusOK},
		{"own Authorization is replaced, not forwarded", withKey, http.Header{"Authorization": {"Bearer not-a-token"}}, http.StatusOK},
		{"localhost Host", withKey, http.Header{"Host": {"localhost:" + port}}, http.StatusOK},
		{"loopback Origin", withKey, http.Header{"Origin": {"http://127.0.0.1:3000"}}, http.StatusOK},
		{"no key", noKey, nil, http.StatusForbidden},
		{"wrong key in path", base + "/" + wrong + "/mcp/bench", nil, http.StatusForbidden},
		{"short key in path", base + "/" + key[:10] + "/mcp/bench", nil, http.StatusForbidden},
		{"wrong key in header", noKey, http.Header{proxy.ProxyKeyHeader: {wrong}}, http.StatusForbidden},
		{"wrong bearer key", noKey, http.Header{"Authorization": {"Bearer " + wrong}}, http.StatusForbidden},
		{"DNS rebinding Host", withKey, http.Header{"Host": {"attacker.example:" + port}}, http.StatusForbidden},
		{"loopback Host with another port (a forward's)", withKey, http.Header{"Host": {"127.0.0.1:1"}}, http.StatusOK},
		{"loopback Host without port", withKey, http.Header{"Host": {"[::1]"}}, http.StatusOK},
		{"DNS rebinding Host without port", withKey, http.Header{"Host": {"attacker.example"}}, http.StatusForbidden},
		{"web page Origin", withKey, http.Header{"Origin": {"https://attacker.example"}}, http.StatusForbidden},
		{"null Origin", withKey, http.Header{"Origin": {"null"}}, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := b.srv.Stats(t)
			status, _, body := proxyPost(t, c.url, c.header, proxyInitBody)
			after := b.srv.Stats(t)
			if status != c.want {
				t.Fatalf("status %d, want %d; body %s", status, c.want, body)
			}
			if c.want == http.StatusForbidden {
				if after.Requests != before.Requests {
					t.Errorf("a refused request reached the server")
				}
				var r proxy.RPCResponse
				if err := json.Unmarshal([]byte(body), &r); err != nil || r.Error.Data.Type != "access_denied" || r.Error.Code != proxy.CodeProxyError {
					t.Errorf("refusal body %s, want an access_denied JSON-RPC error", body)
				}
				return
			}
			if after.Unauthorized != before.Unauthorized || !strings.Contains(body, `"id":7`) {
				t.Errorf("the server did not accept the forwarded call (401s %d→%d): %s", before.Unauthorized, after.Unauthorized, body)
			}
		})
	}
}

// TestProxyRefusesToFollowACrossOriginRedirect: when the server's URL answers with a redirect to
// another origin, the proxy does not follow it (the token would go to that origin): the caller gets a
// proxy_error naming the redirect, and the other origin never sees a request.
func TestProxyRefusesToFollowACrossOriginRedirect(t *testing.T) {
	b := newBench(t, benchOptions{})
	var hits atomic.Int32
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, b.srv.URL+"?moved=1", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)
	// The server's own origin now redirects elsewhere (as a moved server would): its configured URL and
	// the origin its tokens are bound to are both the redirector's.
	b.rebind(t, redirector.URL+"/mcp", func(r *keychain.Record) { r.Binding.Resource = redirector.URL + "/mcp" })

	for _, method := range []string{http.MethodPost, http.MethodGet} {
		before := b.srv.Stats(t)
		body := proxyInitBody
		if method == http.MethodGet {
			body = ""
		}
		status, _, data := proxyRequest(t, method, b.eng.ProxyEndpoint("bench"), nil, body)
		var r proxy.RPCResponse
		if err := json.Unmarshal([]byte(data), &r); err != nil || r.Error.Data.Subtype != proxy.SubtypeUpstreamRedirect {
			t.Fatalf("%s: status %d body %s, want an upstream_redirect error", method, status, data)
		}
		if strings.Contains(data, "moved=1") {
			t.Errorf("%s: the error echoes the redirect's query", method)
		}
		if after := b.srv.Stats(t); after.Requests != before.Requests {
			t.Errorf("%s: the redirect was followed: the other origin saw %d requests", method, after.Requests-before.Requests)
		}
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("the configured URL saw %d requests, want 2", n)
	}
}

// TestProxyNeverSendsATokenToAnotherOriginThanItsGrant: when the configured URL no longer matches the
// origin the tokens were issued for (the settings were edited after sign-in), the proxy refuses with
// resource_mismatch and the other host receives nothing — no request, no token.
func TestProxyNeverSendsATokenToAnotherOriginThanItsGrant(t *testing.T) {
	b := newBench(t, benchOptions{})
	var hits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(other.Close)
	b.rebind(t, other.URL+"/mcp", func(*keychain.Record) {})

	status, _, data := proxyPost(t, b.eng.ProxyEndpoint("bench"), nil, proxyInitBody)
	var r proxy.RPCResponse
	if err := json.Unmarshal([]byte(data), &r); err != nil || r.Error.Data.Subtype != proxy.SubtypeResourceMismatch {
		t.Fatalf("status %d body %s, want a resource_mismatch error", status, data)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the other origin received %d requests", n)
	}
}

// TestProxySendsNoCredentialsToAServerWithoutAuth: a server that needs no auth (the real Go SDK
// handler with no bearer middleware) is added as no-auth and gets no Authorization header at all
// through the proxy — not an empty "Bearer ".
func TestProxySendsNoCredentialsToAServerWithoutAuth(t *testing.T) {
	testbed.StartKeyring(t)
	var mu sync.Mutex
	var seen []string
	srv := mcp.NewServer(&mcp.Implementation{Name: "open", Version: "1"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "echo"}, func(ctx context.Context, req *mcp.CallToolRequest, in struct {
		Text string `json:"text"`
	}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	open := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(open.Close)

	eng := startEngine(t, engine.Config{Paths: tempPaths(t), ProxyAddr: "127.0.0.1:0", Opener: testbed.NewBrowser(t, testbed.BrowserOptions{})})
	if err := eng.Add(context.Background(), engine.AddRequest{Name: "open", URL: open.URL}); err != nil {
		t.Fatalf("add a server without auth: %v", err)
	}
	if st := eng.Snapshot().Servers[0]; st.Auth != "no-auth" || st.State != engine.StateFresh {
		t.Fatalf("status %+v, want a fresh no-auth server", st)
	}
	mu.Lock()
	seen = nil
	mu.Unlock()
	c := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: eng.ProxyEndpoint("open")}, nil)
	if err != nil {
		t.Fatalf("connect through the proxy: %v", err)
	}
	defer cs.Close()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	if err != nil || res.IsError {
		t.Fatalf("call through the proxy: %v %+v", err, res)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatal("the server saw no requests")
	}
	for _, a := range seen {
		if a != "" {
			t.Fatalf("a server without auth received Authorization %q", a)
		}
	}
}
