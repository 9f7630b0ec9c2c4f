package app

import (
	"context"
	"encoding/json"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/keychain"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

const proxyInitBody = `{"jsonrpc":"2.0","id":7,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// proxyPost sends body to url with header set on top of the MCP defaults and returns the status and body.
func proxyPost(t *testing.T, rawURL string, set http.Header, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range set {
		req.Header[k] = v
	}
	if h := set.Get("Host"); h != "" {
		req.Host = h
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}

// TestProxyRefusesForeignHostOriginAndMissingOrWrongKey: DNS rebinding (a foreign Host), a web page (a
// foreign Origin), no key and a wrong key are all answered 403 without reaching the server, while the
// key in the path, in X-Authkeeper-Key or as a bearer token is accepted, a loopback Origin and
// "localhost" as Host are fine, and the caller's own Authorization header never reaches the server.
func TestProxyRefusesForeignHostOriginAndMissingOrWrongKey(t *testing.T) {
	b := newProxyBench(t, proxyBenchOptions{})
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
		{"Host with another port", withKey, http.Header{"Host": {"127.0.0.1:1"}}, http.StatusForbidden},
		{"Host without port", withKey, http.Header{"Host": {"127.0.0.1"}}, http.StatusForbidden},
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
	b := newProxyBench(t, proxyBenchOptions{})
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
		var body io.Reader = strings.NewReader(proxyInitBody)
		if method == http.MethodGet {
			body = nil
		}
		req, _ := http.NewRequest(method, b.eng.ProxyEndpoint("bench"), body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r proxy.RPCResponse
		if err := json.Unmarshal(data, &r); err != nil || r.Error.Data.Subtype != "upstream_redirect" {
			t.Fatalf("%s: status %d body %s, want an upstream_redirect error", method, resp.StatusCode, data)
		}
		if strings.Contains(string(data), "moved=1") {
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
	b := newProxyBench(t, proxyBenchOptions{})
	var hits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(other.Close)
	b.rebind(t, other.URL+"/mcp", func(*keychain.Record) {})

	req, _ := http.NewRequest(http.MethodPost, b.eng.ProxyEndpoint("bench"), strings.NewReader(proxyInitBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var r proxy.RPCResponse
	if err := json.Unmarshal(data, &r); err != nil || r.Error.Data.Subtype != "resource_mismatch" {
		t.Fatalf("status %d body %s, want a resource_mismatch error", resp.StatusCode, data)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the other origin received %d requests", n)
	}
}

// TestProxyPassesVersionNegotiation400sThroughWithoutRefreshing: a 400 from a server that does not know
// server/discover is the server's answer, not an auth failure — the caller gets the same status as a
// direct request and no refresh is made. The same holds for an unknown session's 404.
func TestProxyPassesVersionNegotiation400sThroughWithoutRefreshing(t *testing.T) {
	for _, ts := range []bool{false, true} {
		name := map[bool]string{false: "go", true: "ts"}[ts]
		t.Run(name, func(t *testing.T) {
			b := newProxyBench(t, proxyBenchOptions{TS: ts})
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
	b := newProxyBench(t, proxyBenchOptions{})
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
	_ = testbed.Whoami{}
}
