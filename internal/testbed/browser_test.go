package testbed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"
)

func TestBrowserLoginDeliversTheCallbackAndRecordsTheAnswer(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{})
	client := register(t, as, nativeClient())

	for _, tc := range []struct {
		name  string
		opts  BrowserOptions
		check func(t *testing.T, v Visit, cb *callbackServer)
	}{
		{name: "approve", check: func(t *testing.T, v Visit, cb *callbackServer) {
			q := cb.last(t)
			if q.Get("code") == "" || q.Get("state") != "st" || q.Get("iss") != as.Issuer {
				t.Errorf("callback query = %v", q)
			}
			if v.Status != 200 || v.Body != "signed in" || v.SecondStatus != 0 {
				t.Errorf("visit = %+v", v)
			}
		}},
		{name: "deny", opts: BrowserOptions{Deny: true}, check: func(t *testing.T, v Visit, cb *callbackServer) {
			if q := cb.last(t); q.Get("error") != "access_denied" || q.Get("code") != "" || q.Get("iss") != as.Issuer {
				t.Errorf("callback query = %v, want error=access_denied", q)
			}
		}},
		{name: "tamper", opts: BrowserOptions{Tamper: func(u *url.URL) {
			q := u.Query()
			q.Set("state", "forged")
			q.Del("iss")
			u.RawQuery = q.Encode()
		}}, check: func(t *testing.T, v Visit, cb *callbackServer) {
			if q := cb.last(t); q.Get("state") != "forged" || q.Has("iss") || q.Get("code") == "" {
				t.Errorf("callback query = %v, want the tampered one", q)
			}
			if !strings.Contains(v.Callback, "state=forged") {
				t.Errorf("recorded callback %q is not the tampered one", v.Callback)
			}
		}},
		{name: "deliver twice", opts: BrowserOptions{DeliverTwice: true}, check: func(t *testing.T, v Visit, cb *callbackServer) {
			if n := cb.count(); n != 2 {
				t.Errorf("callback requested %d times, want 2", n)
			}
			if v.Status != 200 || v.SecondStatus != http.StatusConflict || strings.TrimSpace(v.SecondBody) != "already used" {
				t.Errorf("visit = %+v", v)
			}
		}},
		{name: "no delivery", opts: BrowserOptions{NoDeliver: true}, check: func(t *testing.T, v Visit, cb *callbackServer) {
			if n := cb.count(); n != 0 || v.Status != 0 {
				t.Errorf("callback requested %d times (status %d), want none", n, v.Status)
			}
			if u, err := url.Parse(v.Callback); err != nil || !strings.HasPrefix(v.Callback, cb.URL+"?") || u.Query().Get("code") == "" {
				t.Errorf("recorded callback = %q", v.Callback)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cb := newCallbackServer(t)
			b := NewBrowser(t, tc.opts)
			authURL := client.config(as, cb.URL).AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
				oauth2.SetAuthURLParam("resource", benchResource))
			if err := b.Open(authURL); err != nil {
				t.Fatal(err)
			}
			v, err := b.Wait(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got := b.Opened(); len(got) != 1 || got[0] != authURL {
				t.Errorf("Opened = %v", got)
			}
			if b.LastCallback() != v.Callback || v.Callback == "" {
				t.Errorf("LastCallback = %q, visit callback %q", b.LastCallback(), v.Callback)
			}
			tc.check(t, v, cb)
		})
	}
}

func TestBrowserRefusesToDeliverOffLoopback(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{})
	meta := nativeClient()
	meta["application_type"] = "web"
	meta["redirect_uris"] = []string{"https://app.example.com/callback"}
	client := register(t, as, meta)
	b := NewBrowser(t, BrowserOptions{})
	if err := b.Open(client.config(as, "https://app.example.com/callback").AuthCodeURL("st",
		oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Wait(t.Context()); err == nil || !strings.Contains(err.Error(), "not a loopback callback") {
		t.Fatalf("Wait = %v, want a refusal", err)
	}
	if b.LastCallback() != "" {
		t.Errorf("LastCallback = %q", b.LastCallback())
	}
}

func TestBrowserOpenRejectsNonWebURLs(t *testing.T) {
	b := NewBrowser(t, BrowserOptions{})
	for _, u := range []string{"file:///etc/passwd", "javascript:alert(1)", "/relative", ""} {
		if err := b.Open(u); err == nil {
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}

// benchClient is a dynamically registered client.
type benchClient struct {
	ID, Secret, AuthMethod string
}

// nativeClient is the registration authkeeper sends: a native public client whose redirect URI has
// no port, so that any loopback port is accepted (RFC 8252 §7.3).
func nativeClient() map[string]any {
	return map[string]any{
		"application_type":           "native",
		"redirect_uris":              []string{"http://127.0.0.1/callback"},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
		"client_name":                "authkeeper test",
	}
}

// register performs RFC 7591 dynamic registration.
func register(t *testing.T, as *AuthServer, meta map[string]any) benchClient {
	t.Helper()
	body, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(as.RegistrationURL, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		AuthMethod   string `json:"token_endpoint_auth_method"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(raw, &out) != nil || out.ClientID == "" {
		t.Fatalf("register: %s: %s", resp.Status, raw)
	}
	return benchClient{ID: out.ClientID, Secret: out.ClientSecret, AuthMethod: out.AuthMethod}
}

func (c benchClient) config(as *AuthServer, redirect string) *oauth2.Config {
	style := oauth2.AuthStyleInHeader
	if c.AuthMethod != "client_secret_basic" {
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID: c.ID, ClientSecret: c.Secret, RedirectURL: redirect,
		Scopes: []string{"mcp:read", "mcp:write"},
		Endpoint: oauth2.Endpoint{AuthURL: as.AuthURL, TokenURL: as.TokenURL,
			DeviceAuthURL: as.DeviceAuthURL, AuthStyle: style},
	}
}

// authenticate builds a token-endpoint POST of form, authenticated as the client registered.
func (c benchClient) authenticate(t *testing.T, endpoint string, form url.Values) *http.Request {
	t.Helper()
	switch c.AuthMethod {
	case "none":
		form.Set("client_id", c.ID)
	case "client_secret_post":
		form.Set("client_id", c.ID)
		form.Set("client_secret", c.Secret)
	}
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.AuthMethod == "client_secret_basic" {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	return req
}

// login runs a PKCE S256 authorization-code flow through b to cb and exchanges the code, with
// resource on both requests. It returns the token and the callback's query.
func login(t *testing.T, as *AuthServer, b *Browser, c benchClient, cb *callbackServer, resource string) (*oauth2.Token, url.Values) {
	t.Helper()
	cfg := c.config(as, cb.URL)
	verifier := oauth2.GenerateVerifier()
	res := oauth2.SetAuthURLParam("resource", resource)
	if err := b.Open(cfg.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier), res)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	q := cb.last(t)
	if q.Get("state") != "state-1" || q.Get("code") == "" {
		t.Fatalf("callback = %v", q)
	}
	tok, err := cfg.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier), res)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok, q
}

// callbackServer is a loopback redirect target that records each request's query. It answers the
// first request "signed in" and later ones 409 "already used", as the app's listener would.
type callbackServer struct {
	URL string // http://127.0.0.1:PORT/callback

	mu      sync.Mutex
	queries []url.Values
}

func newCallbackServer(t *testing.T) *callbackServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cb := &callbackServer{URL: fmt.Sprintf("http://%s/callback", l.Addr())}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cb.mu.Lock()
		cb.queries = append(cb.queries, r.URL.Query())
		n := len(cb.queries)
		cb.mu.Unlock()
		if n > 1 {
			http.Error(w, "already used", http.StatusConflict)
			return
		}
		io.WriteString(w, "signed in")
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return cb
}

func (cb *callbackServer) count() int {
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return len(cb.queries)
}

// last returns the query of the latest callback request; the browser has finished by then.
func (cb *callbackServer) last(t *testing.T) url.Values {
	t.Helper()
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if len(cb.queries) == 0 {
		t.Fatal("the callback was never requested")
	}
	return cb.queries[len(cb.queries)-1]
}

// tokenAnswer is a token endpoint's answer.
type tokenAnswer struct {
	Status       int
	RetryAfter   string
	Error        string `json:"error"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
}

func (a tokenAnswer) mustOK(t *testing.T) tokenAnswer {
	t.Helper()
	if a.Status != 200 || a.AccessToken == "" {
		t.Fatalf("token request failed: %d %s", a.Status, a.Error)
	}
	return a
}

// refresh sends an RFC 6749 §6 refresh request with an RFC 8707 resource.
func refresh(t *testing.T, as *AuthServer, c benchClient, rt, resource string) tokenAnswer {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "resource": {resource}}
	req := c.authenticate(t, as.TokenURL, form)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	defer resp.Body.Close()
	a := tokenAnswer{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&a) // a malformed body leaves a zero
	return a
}

// introspect asks the server about token as the resource server would (RFC 7662).
func introspect(t *testing.T, as *AuthServer, token string) map[string]any {
	t.Helper()
	id, secret := as.IntrospectionClient()
	req, err := http.NewRequest(http.MethodPost, as.IntrospectionURL, strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("introspect: %v", err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("introspect: %d %v", resp.StatusCode, err)
	}
	return out
}
