//go:build soak

package soak

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
)

// initBody is a raw MCP initialize call.
const initBody = `{"jsonrpc":"2.0","id":7,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

func securityCases(t *testing.T, r *report) {
	r.run(t, "security", "proxy-access",
		"a foreign Host, a foreign Origin, a missing key and a wrong key (in the path, in X-Authkeeper-Key, as "+
			"a bearer) each get 403 and never reach the MCP server; the right key gets through", proxyAccess)
	r.run(t, "security", "loopback-callback",
		"a callback with a wrong state, without iss, with a wrong iss, or with a replayed code fails the "+
			"sign-in, saves nothing and leaves the stored token unchanged; a second delivery of a good callback is "+
			"answered 'already handled' and redeems nothing", callbacks)
	r.run(t, "security", "upstream-redirect",
		"a signed-in server starts answering every request with a 307 to another host (127.0.0.2), as a "+
			"moved server would: the proxy does not follow it, the agent gets a proxy_error/upstream_redirect "+
			"naming the new location, and the other host never sees a request (so never the token)", upstreamRedirect)
}

// rawPost posts body to u with the MCP headers plus set, and returns the status and body.
func rawPost(t *testing.T, u string, set http.Header, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range set {
		if k == "Host" {
			req.Host = v[0]
			continue
		}
		req.Header[k] = v
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(data)
}

func proxyAccess(t *testing.T, c *caseResult) {
	e := newEngine(t)
	s := newServer(t, e, "guarded", testbed.AuthServerOptions{}, false, false)
	base := strings.TrimSuffix(e.endpoint("guarded"), "/"+e.key()+"/mcp/guarded")
	noKey := base + "/mcp/guarded"
	wrong := strings.Repeat("x", len(e.key()))
	cases := []struct {
		name string
		url  string
		h    http.Header
	}{
		{"foreign Host", e.endpoint("guarded"), http.Header{"Host": {"evil.example:" + portOf(base)}}},
		{"foreign Host without port", e.endpoint("guarded"), http.Header{"Host": {"evil.example"}}},
		{"foreign Origin", e.endpoint("guarded"), http.Header{"Origin": {"https://evil.example"}}},
		{"missing key", noKey, nil},
		{"wrong key in the path", base + "/" + wrong + "/mcp/guarded", nil},
		{"wrong X-Authkeeper-Key", noKey, http.Header{"X-Authkeeper-Key": {wrong}}},
		{"wrong key as bearer", noKey, http.Header{"Authorization": {"Bearer " + wrong}}},
	}
	results := map[string]int{}
	for _, tc := range cases {
		before := s.srv.Stats(t).Requests
		status, body := rawPost(t, tc.url, tc.h, initBody)
		results[tc.name] = status
		reached := s.srv.Stats(t).Requests - before
		c.check(t, status == http.StatusForbidden, "%s: status %d, want 403 (%s)", tc.name, status, body)
		c.check(t, reached == 0, "%s: reached the MCP server (%d requests)", tc.name, reached)
	}
	status, _ := rawPost(t, e.endpoint("guarded"), nil, initBody)
	results["right key (control)"] = status
	c.figure("statuses", results)
	c.check(t, status == http.StatusOK, "the right key got %d", status)
	toks := &tokenSet{}
	toks.sample(e, []string{"guarded"})
	leakCheck(t, c, e, toks, map[string]string{}, nil)
}

func portOf(u string) string {
	p, _ := url.Parse(u)
	return p.Port()
}

func callbacks(t *testing.T, c *caseResult) {
	e := newEngine(t)
	s := newServer(t, e, "signin", testbed.AuthServerOptions{}, false, false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := e.browser.Wait(ctx); err != nil { // the add's flow
		t.Fatal(err)
	}
	ks, err := keychain.NewKeyringStore(keychain.KeyringConfig{})
	if err != nil {
		t.Fatal(err)
	}
	stored := func() string {
		rec, err := ks.Get("signin")
		if err != nil {
			return ""
		}
		return rec.AccessToken + " " + rec.RefreshToken
	}
	toks := &tokenSet{}
	toks.sample(e, []string{"signin"})
	codes := func() int { return s.as.TokenRequests(t, "authorization_code") }
	figures := map[string]any{}

	// A good callback delivered twice: one sign-in, the reload is refused, one code redemption.
	e.browser.SetOptions(testbed.BrowserOptions{DeliverTwice: true})
	before := codes()
	exit, _, _ := e.cli(ctx, "login", "signin")
	v, _ := e.browser.Wait(ctx)
	toks.sample(e, []string{"signin"})
	figures["second callback"] = map[string]any{"login_exit": exit, "first": v.Status, "second": v.SecondStatus, "redemptions": codes() - before}
	c.check(t, exit == 0 && v.Status == 200, "good sign-in: exit %d, callback %d", exit, v.Status)
	c.check(t, v.SecondStatus != 200 && strings.Contains(v.SecondBody, "already handled"), "second delivery answered %d: %.200s", v.SecondStatus, v.SecondBody)
	c.check(t, codes()-before == 1, "%d code redemptions for one sign-in delivered twice", codes()-before)
	used, _ := url.Parse(v.Callback)
	oldCode := used.Query().Get("code")

	tampers := []struct {
		name string
		f    func(*url.URL)
	}{
		{"wrong state", func(u *url.URL) { setQuery(u, "state", "not-the-state") }},
		{"missing iss", func(u *url.URL) { q := u.Query(); q.Del("iss"); u.RawQuery = q.Encode() }},
		{"wrong iss", func(u *url.URL) { setQuery(u, "iss", "http://127.0.0.1:1/evil") }},
		{"replayed code", func(u *url.URL) { setQuery(u, "code", oldCode) }}, // last: the AS may revoke that code's grant
	}
	for _, tc := range tampers {
		prev := stored()
		e.browser.SetOptions(testbed.BrowserOptions{Tamper: tc.f})
		lctx, lcancel := context.WithTimeout(ctx, 45*time.Second)
		exit, _, errOut := e.cli(lctx, "login", "signin")
		lcancel()
		v, _ := e.browser.Wait(ctx)
		reason := firstLine(errOut)
		figures[tc.name] = map[string]any{"login_exit": exit, "callback_status": v.Status, "reason": reason}
		c.check(t, exit != 0, "%s: the sign-in succeeded", tc.name)
		c.check(t, v.Status != 200, "%s: the callback was answered %d", tc.name, v.Status)
		c.check(t, stored() == prev, "%s: the stored credentials changed", tc.name)
	}
	e.browser.SetOptions(testbed.BrowserOptions{})
	c.figure("flows", figures)
	leakCheck(t, c, e, toks, map[string]string{}, nil)
}

func setQuery(u *url.URL, k, v string) {
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func upstreamRedirect(t *testing.T, c *caseResult) {
	e := newEngine(t)
	s := newServer(t, e, "moved", testbed.AuthServerOptions{}, false, false)
	// The other host: 127.0.0.2, another loopback address, counting what reaches it.
	var foreignHits atomic.Int32
	fl, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.2: %v", err)
	}
	foreign := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		foreignHits.Add(1)
		w.WriteHeader(http.StatusTeapot)
	}), ReadHeaderTimeout: 5 * time.Second}
	go foreign.Serve(fl)
	t.Cleanup(func() { foreign.Close() })
	// The server moved: from now on its URL — the one its tokens were issued for — redirects.
	s.srv.RedirectTo(t, "http://"+fl.Addr().String()+"/mcp")
	before := s.srv.Stats(t).Requests
	status, body := rawPost(t, e.endpoint("moved"), nil, initBody)
	var resp struct {
		Error struct {
			Code    int
			Message string
			Data    struct{ Type, Subtype string }
		}
	}
	_ = json.Unmarshal([]byte(body), &resp)
	redirects := s.srv.Stats(t).Requests - before
	c.figure("status", status)
	c.figure("error", resp.Error.Data.Type+"/"+resp.Error.Data.Subtype)
	c.figure("redirects_answered", redirects)
	c.figure("requests_at_the_other_host", foreignHits.Load())
	c.check(t, resp.Error.Data.Type == "proxy_error" && resp.Error.Data.Subtype == "upstream_redirect" &&
		strings.Contains(resp.Error.Message, fl.Addr().String()),
		"answer %d %.300s, want proxy_error/upstream_redirect naming the new location", status, body)
	c.check(t, redirects >= 1, "the server was never asked (%d requests)", redirects)
	c.check(t, foreignHits.Load() == 0, "the other host saw %d requests", foreignHits.Load())
	toks := &tokenSet{}
	toks.sample(e, []string{"moved"})
	leakCheck(t, c, e, toks, map[string]string{}, nil)
}
