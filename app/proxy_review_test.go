package app

import (
	"context"
	"encoding/json"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/keychain"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

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

// TestProxyServerRefusingEvenAFreshTokenCostsOneRefreshThenRevoked: a server that refuses every token
// (here a front that answers 401 once told to) gets one forced refresh and one replay; when the replay
// is refused too the server is marked revoked, the caller gets credential_revoked, and later calls
// neither reach the server nor the AS until the user signs in.
func TestProxyServerRefusingEvenAFreshTokenCostsOneRefreshThenRevoked(t *testing.T) {
	b := newProxyBench(t, proxyBenchOptions{})
	upstream, _ := url.Parse(b.srv.URL)
	rp := httputil.NewSingleHostReverseProxy(upstream)
	var refuse atomic.Bool
	var refused atomic.Int32
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() {
			refused.Add(1)
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "refused", http.StatusUnauthorized)
			return
		}
		r.Host = upstream.Host
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	// The server now sits behind the front; its tokens are bound to the front's origin.
	b.rebind(t, front.URL+"/mcp", func(r *keychain.Record) {
		r.Binding.Resource = front.URL + "/mcp"
		// Refresh without `resource` (the Entra fallback), so the AS keeps issuing for the granted
		// resource — the real server behind the front — instead of refusing the front's URL.
		r.Binding.OmitResource = true
	})
	time.Sleep(engine.MinRefreshGap + 100*time.Millisecond) // past the floor for freshly issued tokens

	post := func() proxy.RPCResponse {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, b.eng.ProxyEndpoint("bench"), strings.NewReader(proxyInitBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r proxy.RPCResponse
		data, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(data, &r); err != nil || r.Error.Code == 0 {
			t.Fatalf("answer %d %s: not a JSON-RPC error", resp.StatusCode, data)
		}
		return r
	}
	before := b.as.TokenRequests(t, "refresh_token")
	refuse.Store(true)
	if r := post(); r.Error.Data.Subtype != "credential_revoked" {
		t.Fatalf("first refused call: %+v, want credential_revoked", r.Error)
	}
	for range 5 {
		if r := post(); r.Error.Data.Subtype != "credential_revoked" {
			t.Fatalf("later call: %+v, want credential_revoked", r.Error)
		}
	}
	if n := b.as.TokenRequests(t, "refresh_token") - before; n != 1 {
		t.Errorf("%d refreshes for a server refusing every token, want 1", n)
	}
	if n := refused.Load(); n != 2 {
		t.Errorf("the server saw %d requests, want 2 (the call and its one replay)", n)
	}
	if st := b.eng.Snapshot().Servers[0]; st.State != engine.StateRevoked {
		t.Errorf("state %s, want revoked", st.State)
	}
}
