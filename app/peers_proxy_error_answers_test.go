package app

import (
	"context"
	"encoding/json"
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
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/google/go-cmp/cmp"
)

// What a caller gets from the proxy when the call cannot go through with a working token: a
// server's own 400 or 404 passed through without a refresh, a JSON-RPC error for an unknown server
// or a signed-out one, and credential_revoked after one refresh for a server that refuses even a
// fresh token.

// TestProxyServerRefusingEvenAFreshTokenCostsOneRefreshThenRevoked: a server that refuses every token
// (here a front that answers 401 once told to) gets one forced refresh and one replay; when the replay
// is refused too the server is marked revoked, the caller gets credential_revoked, and later calls
// neither reach the server nor the AS until the user signs in.
func TestProxyServerRefusingEvenAFreshTokenCostsOneRefreshThenRevoked(t *testing.T) {
	b := newBench(t, benchOptions{})
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
		status, _, data := proxyPost(t, b.eng.ProxyEndpoint("bench"), nil, proxyInitBody)
		var r proxy.RPCResponse
		if err := json.Unmarshal([]byte(data), &r); err != nil || r.Error.Code == 0 {
			t.Fatalf("answer %d %s: not a JSON-RPC error", status, data)
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

// TestProxyAnswersEveryKindOfRequestWhenSignedOut: after a logout, a call gets 200 and the
// sign_in_required error under its id, a batch gets one error per call, and a notification, a GET and
// a DELETE get 503 with the error under id null — none of them reaches the server.
func TestProxyAnswersEveryKindOfRequestWhenSignedOut(t *testing.T) {
	b := newBench(t, benchOptions{})
	_, events, unsubscribe := b.eng.Subscribe()
	defer unsubscribe()
	if err := b.eng.Logout(t.Context(), "bench"); err != nil {
		t.Fatal(err)
	}
	// The views (tray, serve's log) learn of it at once, not at their next redraw.
	select {
	case ev := <-events:
		if ev.Kind != engine.EventSignedOut || ev.Server != "bench" {
			t.Errorf("the event after a logout is %s for %q, want signed_out for bench", ev.Kind, ev.Server)
		}
	case <-time.After(5 * time.Second):
		t.Error("a logout published no event")
	}
	if n := auditKinds(t, b.paths, engine.EventSignedOut, "bench"); n != 1 {
		t.Errorf("the audit log has %d signed_out events for bench, want 1", n)
	}
	before := b.srv.Stats(t).Requests
	u := b.eng.ProxyEndpoint("bench")
	for _, c := range []struct {
		method, body string
		status       int
		ids          []string
	}{
		{http.MethodPost, proxyInitBody, http.StatusOK, []string{"7"}},
		{http.MethodPost, `[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`, http.StatusOK, []string{"1", "2"}},
		{http.MethodPost, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, http.StatusServiceUnavailable, []string{"null"}},
		{http.MethodGet, "", http.StatusServiceUnavailable, []string{"null"}},
		{http.MethodDelete, "", http.StatusServiceUnavailable, []string{"null"}},
	} {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		req, _ := http.NewRequest(c.method, u, body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var rs []proxy.RPCResponse
		if strings.HasPrefix(string(data), "[") {
			err = json.Unmarshal(data, &rs)
		} else {
			var r proxy.RPCResponse
			err = json.Unmarshal(data, &r)
			rs = []proxy.RPCResponse{r}
		}
		var ids []string
		for _, r := range rs {
			ids = append(ids, string(r.ID))
			if r.Error.Code != proxy.CodeAuthFailure || r.Error.Data.Subtype != proxy.SubtypeSignInRequired || r.Error.Data.Server != "bench" {
				t.Errorf("%s %s: error %+v, want sign_in_required for bench", c.method, c.body, r.Error)
			}
		}
		if err != nil || resp.StatusCode != c.status || !cmp.Equal(ids, c.ids) {
			t.Errorf("%s %s: status %d ids %v (%v), want %d %v; body %s", c.method, c.body, resp.StatusCode, ids, err, c.status, c.ids, data)
		}
	}
	if n := b.srv.Stats(t).Requests - before; n != 0 {
		t.Errorf("%d requests reached the server without a token", n)
	}
}

// TestProxyPassesVersionNegotiation400sThroughWithoutRefreshing: a 400 from a server that does not know
// server/discover is the server's answer, not an auth failure — the caller gets the same status as a
// direct request and no refresh is made. The same holds for an unknown session's 404.
func TestProxyPassesVersionNegotiation400sThroughWithoutRefreshing(t *testing.T) {
	for _, ts := range []bool{false, true} {
		name := map[bool]string{false: "go", true: "ts"}[ts]
		t.Run(name, func(t *testing.T) {
			b := newBench(t, benchOptions{TS: ts})
			tok, err := b.eng.Token(context.Background(), "bench")
			if err != nil {
				t.Fatal(err)
			}
			refreshes := b.as.TokenRequests(t, "refresh_token")
			for _, c := range []struct{ body, session string }{
				{`{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}`, ""},
				{`{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`, "no-such-session"},
			} {
				h := http.Header{"Mcp-Protocol-Version": {"2025-06-18"}}
				if c.session != "" {
					h.Set("Mcp-Session-Id", c.session)
				}
				via, _, viaBody := proxyPost(t, b.eng.ProxyEndpoint("bench"), h, c.body)
				h.Set("Authorization", "Bearer "+tok)
				direct, _, _ := proxyPost(t, b.srv.URL, h, c.body)
				if via != direct || via == http.StatusUnauthorized {
					t.Errorf("%s: through the proxy %d (%s), direct %d", c.body, via, viaBody, direct)
				}
			}
			if n := b.as.TokenRequests(t, "refresh_token") - refreshes; n != 0 {
				t.Errorf("%d refreshes for answers that are not auth failures", n)
			}
		})
	}
}

// TestProxyAnswersAnUnknownServerWithAJSONRPCError: a call for a server that is not configured fails
// with the call's id and a reason, and a GET gets 404.
func TestProxyAnswersAnUnknownServerWithAJSONRPCError(t *testing.T) {
	b := newBench(t, benchOptions{})
	u := strings.Replace(b.eng.ProxyEndpoint("bench"), "/mcp/bench", "/mcp/"+url.PathEscape("nope"), 1)
	status, _, body := proxyPost(t, u, nil, proxyInitBody)
	var r proxy.RPCResponse
	if err := json.Unmarshal([]byte(body), &r); err != nil || status != http.StatusOK || string(r.ID) != "7" || r.Error.Data.Type != "not_configured" {
		t.Fatalf("status %d body %s, want 200 with a not_configured error for id 7", status, body)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of an unknown server: %d, want 404", resp.StatusCode)
	}
}
