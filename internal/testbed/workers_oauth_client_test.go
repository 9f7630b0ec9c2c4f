package testbed

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// wkAuthorization is the outcome of one authorization request.
type wkAuthorization struct {
	Status      int    // 200: the callback listener answered; else /authorize's own answer
	Body        string // /authorize's page when it did not redirect
	RedirectURI string
	Callback    url.Values // the query the listener received, if it did
	State       string
	Verifier    string // the PKCE code_verifier
}

// wkAuthorize sends the browser to /authorize for client with cb's redirect URI, PKCE S256, scope and
// resource, and follows the auto-approval redirect to a loopback listener (and nowhere else).
func wkAuthorize(t *testing.T, w *WorkerAS, client string, cb *wkCallback) wkAuthorization {
	t.Helper()
	a := wkAuthorization{RedirectURI: cb.URL, State: wkRandom(t), Verifier: wkRandom(t) + wkRandom(t)}
	before := cb.count()
	sum := sha256.Sum256([]byte(a.Verifier))
	u := w.AuthURL + "?" + url.Values{
		"response_type": {"code"}, "client_id": {client}, "redirect_uri": {cb.URL}, "scope": {WorkerScope},
		"state": {a.State}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}, "resource": {w.MCPURL},
	}.Encode()
	browser := &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > 1 || !isLoopback(req.URL) {
			return fmt.Errorf("unexpected redirect to %s", req.URL.Redacted())
		}
		return nil
	}}
	resp, err := browser.Get(u)
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	a.Status, a.Body = resp.StatusCode, strings.TrimSpace(string(b))
	if cb.count() > before {
		a.Callback = cb.last()
	}
	return a
}

// wkExchange redeems the code of a, with its redirect URI, verifier and the resource.
func wkExchange(t *testing.T, w *WorkerAS, client string, a wkAuthorization) wkTokenAnswer {
	t.Helper()
	return wkToken(t, w, url.Values{"grant_type": {"authorization_code"}, "code": {a.Callback.Get("code")}, "client_id": {client},
		"redirect_uri": {a.RedirectURI}, "code_verifier": {a.Verifier}, "resource": {w.MCPURL}})
}

func wkRefresh(t *testing.T, w *WorkerAS, client, rt string) wkTokenAnswer {
	t.Helper()
	return wkToken(t, w, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {client}, "resource": {w.MCPURL}})
}

// wkRevoke revokes token as its public client (RFC 7009), which must answer 200.
func wkRevoke(t *testing.T, w *WorkerAS, client, token string) {
	t.Helper()
	resp := wkPost(t, w.RevocationURL, "", "application/x-www-form-urlencoded", url.Values{"token": {token}, "client_id": {client}}.Encode())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.StatusCode, resp.body)
	}
}

// wkTokenAnswer is a token endpoint's answer, success or error.
type wkTokenAnswer struct {
	Status           int
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	RefreshToken     string `json:"refresh_token"`
	Scope            string `json:"scope"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	issued           time.Time
}

// mustOK fails the test unless the answer is a bearer token for WorkerScope with a refresh token
// and the worker's lifetime.
func (a wkTokenAnswer) mustOK(t *testing.T) wkTokenAnswer {
	t.Helper()
	if a.Status != http.StatusOK || a.AccessToken == "" || a.RefreshToken == "" {
		t.Fatalf("token request: %d %s %q", a.Status, a.Error, a.ErrorDescription)
	}
	if !strings.EqualFold(a.TokenType, "bearer") || a.Scope != WorkerScope || a.ExpiresIn != int(WorkerAccessTokenTTL/time.Second) {
		t.Errorf("token answer: type %q scope %q expires_in %d", a.TokenType, a.Scope, a.ExpiresIn)
	}
	return a
}

func wkToken(t *testing.T, w *WorkerAS, form url.Values) wkTokenAnswer {
	t.Helper()
	issued := time.Now()
	resp := wkPost(t, w.TokenURL, "", "application/x-www-form-urlencoded", form.Encode())
	a := wkTokenAnswer{Status: resp.StatusCode, issued: issued}
	if err := json.Unmarshal(resp.body, &a); err != nil {
		t.Fatalf("token endpoint: %d %q: %v", resp.StatusCode, resp.body, err)
	}
	return a
}

// wkEcho initializes an MCP session as a client does and calls echo; it returns the status of the
// first refused request with its challenge, or 200 and the tool's text.
func wkEcho(t *testing.T, w *WorkerAS, token string) (status int, challenge, text string) {
	t.Helper()
	steps := []struct {
		id     int
		method string
		params any
	}{
		{1, "initialize", map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{},
			"clientInfo": map[string]any{"name": "authkeeper-bench", "version": "1"}}},
		{0, "notifications/initialized", nil},
		{2, "tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "hello from authkeeper"}}},
	}
	for _, s := range steps {
		msg := map[string]any{"jsonrpc": "2.0", "method": s.method}
		if s.id != 0 {
			msg["id"] = s.id
		}
		if s.params != nil {
			msg["params"] = s.params
		}
		body, _ := json.Marshal(msg)
		resp := wkPost(t, w.MCPURL, token, "application/json", string(body))
		if resp.StatusCode/100 != 2 {
			return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), ""
		}
		if s.method != "tools/call" {
			continue
		}
		var reply struct {
			Result struct {
				Content []struct{ Type, Text string }
				IsError bool
			}
			Error *struct{ Message string }
		}
		if err := json.Unmarshal(wkJSONRPCBody(t, resp), &reply); err != nil || reply.Error != nil || reply.Result.IsError || len(reply.Result.Content) != 1 {
			t.Fatalf("tools/call echo: %s (%v)", resp.body, err)
		}
		return resp.StatusCode, "", reply.Result.Content[0].Text
	}
	panic("unreachable")
}

func wkMustEcho(t *testing.T, w *WorkerAS, token string) string {
	t.Helper()
	status, challenge, text := wkEcho(t, w, token)
	if status != http.StatusOK {
		t.Fatalf("echo: %d %s", status, challenge)
	}
	return text
}

func wkMustBeRefused(t *testing.T, w *WorkerAS, token string) {
	t.Helper()
	if status, challenge, _ := wkEcho(t, w, token); status != http.StatusUnauthorized || !strings.Contains(challenge, `error="invalid_token"`) {
		t.Errorf("echo with a dead token: %d %q, want 401 invalid_token", status, challenge)
	}
}

// wkJSONRPCBody returns the JSON-RPC message of an MCP answer, sent as JSON or as one SSE event.
func wkJSONRPCBody(t *testing.T, resp wkResponse) []byte {
	t.Helper()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp.body
	}
	for line := range strings.Lines(string(resp.body)) {
		if data, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "data:"); ok {
			return []byte(strings.TrimSpace(data))
		}
	}
	t.Fatalf("SSE answer without data: %q", resp.body)
	return nil
}

type wkResponse struct {
	*http.Response
	body []byte
}

// wkPost sends body with an optional bearer token; MCP's Accept header is always sent.
func wkPost(t *testing.T, u, token, contentType, body string) wkResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := wkHTTP.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	return wkResponse{resp, b}
}

// wkGetJSON fetches u and decodes a 200 answer into out when non-nil; it returns the status.
func wkGetJSON(t *testing.T, u string, out any) int {
	t.Helper()
	resp, err := wkHTTP.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v: %s", u, err, b)
		}
	}
	return resp.StatusCode
}

var wkHTTP = &http.Client{Timeout: 15 * time.Second}

func wkRandom(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// wkCallback is a loopback redirect target, as a native client runs one: it records every callback
// query and answers 200.
type wkCallback struct {
	URL string // http://127.0.0.1:PORT/callback

	mu      sync.Mutex
	queries []url.Values
}

func (c *wkCallback) count() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.queries) }

func (c *wkCallback) port() string { u, _ := url.Parse(c.URL); return u.Port() }

func (c *wkCallback) last() url.Values {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queries) == 0 {
		return url.Values{}
	}
	return c.queries[len(c.queries)-1]
}

// wkListen starts a callback listener, stopped by t.Cleanup.
func wkListen(t *testing.T) *wkCallback {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &wkCallback{URL: "http://" + l.Addr().String() + "/callback"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(rw http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.queries = append(c.queries, r.URL.Query())
		c.mu.Unlock()
		_, _ = io.WriteString(rw, "signed in\n")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return c
}

// wkFatalTB records Fatal instead of stopping the test, then unwinds with a panic.
type wkFatalTB struct {
	testing.TB
	failed bool
}

func (f *wkFatalTB) Fatal(args ...any)                 { f.failed = true; panic("fatal") }
func (f *wkFatalTB) Fatalf(format string, args ...any) { f.failed = true; panic("fatal") }
func (f *wkFatalTB) Helper()                           {}
