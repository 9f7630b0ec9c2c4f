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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests do with raw HTTP what an MCP client does against the worker: discovery, dynamic
// registration of an exact loopback redirect URI, authorization code + PKCE S256 through the
// auto-approving /authorize to a loopback listener, code exchange with `resource`, MCP calls,
// refreshes, revocation.
//
// Refresh-token rotation, as observed with both 1.2.3 and 0.2.3 (the same code in both): a grant
// keeps two refresh tokens, the current one and the previous one. Refreshing with the current one
// returns a new one and demotes the one used to "previous"; the token before that is dead
// (invalid_grant "Invalid refresh token"). Refreshing with the previous one — the grace that lets a
// client retry a refresh whose answer it lost — also succeeds, returns yet another new one, and kills
// the one issued in between (the one whose answer was lost). No reuse detection: a replayed previous
// token never revokes the grant, and neither does an older, dead one. Access tokens are not touched
// by a refresh: each lives out its 60 seconds unless revoked (refused 59–61 s after it was asked for:
// the library counts whole seconds, and local KV drops the record at the same second). Revoking an
// access token ends only that token; revoking the current refresh token ends the grant, its refresh
// tokens and every access token issued from it. A replayed authorization code is refused by both;
// 1.2.3 also revokes the grant it created, 0.2.3 does not. And 1.2.3 revokes a client's grant when the
// same client is authorized again for the same user and resource; 0.2.3 keeps both grants.

func TestWorkerCurrentSignsInRotatesRevokesAndAcceptsAnyLoopbackPort(t *testing.T) {
	t.Parallel()
	w := NewWorkerAS(t, WorkerOptions{})
	if w.LibraryVersion != "1.2.3" {
		t.Errorf("library version %s, want the pinned 1.2.3", w.LibraryVersion)
	}
	expiring := wkSignIn(t, w) // signed in first so that its minute runs while the rest is tested

	t.Run("discovery", func(t *testing.T) { wkDiscovery(t, w) })
	t.Run("sign-in, three rotating refreshes, revocation", func(t *testing.T) { wkLifecycle(t, w) })
	t.Run("a replayed code is refused and revokes its grant", func(t *testing.T) { wkCodeReplay(t, w) })
	t.Run("a second sign-in of the same client revokes the first grant", func(t *testing.T) { wkSecondSignIn(t, w) })
	t.Run("a redirect URI on another loopback port is accepted", func(t *testing.T) {
		cb, other := wkListen(t), wkListen(t)
		client := wkRegister(t, w, cb.URL)
		a := wkAuthorize(t, w, client, other)
		if a.Status != http.StatusOK || other.count() != 1 || cb.count() != 0 {
			t.Fatalf("authorize with port %s: %d %q; callbacks: registered %d, other %d", other.port(), a.Status, a.Body, cb.count(), other.count())
		}
		tok := wkExchange(t, w, client, a).mustOK(t)
		wkMustEcho(t, w, tok.AccessToken)
	})
	t.Run("access token expires after 60 s", func(t *testing.T) { wkExpires(t, w, expiring) })
}

func TestWorker023SignsInRotatesRevokesButOnlyOnTheExactRedirectURI(t *testing.T) {
	t.Parallel()
	w := NewWorkerAS(t, WorkerOptions{Version: Worker023})
	if w.LibraryVersion != "0.2.3" {
		t.Errorf("library version %s, want 0.2.3", w.LibraryVersion)
	}
	expiring := wkSignIn(t, w)

	t.Run("discovery", func(t *testing.T) { wkDiscovery(t, w) })
	t.Run("sign-in, three rotating refreshes, revocation", func(t *testing.T) { wkLifecycle(t, w) })
	t.Run("a replayed code is refused, its grant lives on", func(t *testing.T) { wkCodeReplay(t, w) })
	t.Run("a second sign-in of the same client keeps the first grant", func(t *testing.T) { wkSecondSignIn(t, w) })
	t.Run("a redirect URI on another loopback port is refused, the exact one works", func(t *testing.T) {
		cb, other := wkListen(t), wkListen(t)
		client := wkRegister(t, w, cb.URL)
		a := wkAuthorize(t, w, client, other)
		if a.Status != http.StatusBadRequest || !strings.Contains(a.Body, "Invalid redirect URI") || other.count() != 0 || cb.count() != 0 {
			t.Fatalf("authorize with port %s registered %s: %d %q; callbacks: registered %d, other %d",
				other.port(), cb.port(), a.Status, a.Body, cb.count(), other.count())
		}
		a = wkAuthorize(t, w, client, cb)
		if a.Status != http.StatusOK || cb.count() != 1 {
			t.Fatalf("authorize with the exact URI: %d %q", a.Status, a.Body)
		}
		tok := wkExchange(t, w, client, a).mustOK(t)
		wkMustEcho(t, w, tok.AccessToken)
	})
	t.Run("access token expires after 60 s", func(t *testing.T) { wkExpires(t, w, expiring) })
}

func TestWorker023WithoutResourceMetadataChallengesWithoutIt(t *testing.T) {
	t.Parallel()
	w := NewWorkerAS(t, WorkerOptions{Version: Worker023, NoResourceMetadata: true})
	if w.ResourceMetadataURL != "" {
		t.Errorf("ResourceMetadataURL = %q, want none", w.ResourceMetadataURL)
	}
	resp := wkPost(t, w.MCPURL, "", "application/json", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized ||
		!strings.HasPrefix(ch, "Bearer ") || strings.Contains(ch, "resource_metadata") {
		t.Errorf("unauthenticated MCP request: %d, challenge %q; want 401 Bearer without resource_metadata", resp.StatusCode, ch)
	}
	for _, p := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		if status := wkGetJSON(t, w.Issuer+p, nil); status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, status)
		}
	}
	// What a 2025-03-26 client falls back to: the AS metadata at the MCP server's origin.
	var meta struct{ Issuer string }
	if status := wkGetJSON(t, w.Issuer+"/.well-known/oauth-authorization-server", &meta); status != http.StatusOK || meta.Issuer != w.Issuer {
		t.Errorf("AS metadata at the origin: %d %+v", status, meta)
	}
	wkMustEcho(t, w, wkSignIn(t, w).AccessToken)
}

func TestWorkerRejectsBadOptions(t *testing.T) {
	// The fixture's own checks run before anything starts; a fake testing.TB records the failure.
	for _, opts := range []WorkerOptions{{Version: "9.9.9"}, {NoResourceMetadata: true}} {
		ft := &wkFatalTB{TB: t}
		func() {
			defer func() { _ = recover() }()
			NewWorkerAS(ft, opts)
		}()
		if !ft.failed {
			t.Errorf("NewWorkerAS(%+v) did not fail", opts)
		}
	}
}

// wkDiscovery checks what a client finds before signing in: the RFC 8414 metadata, the RFC 9728
// document the 401 challenge names, and what each library version advertises.
func wkDiscovery(t *testing.T, w *WorkerAS) {
	var meta struct {
		Issuer                string   `json:"issuer"`
		AuthorizationEndpoint string   `json:"authorization_endpoint"`
		TokenEndpoint         string   `json:"token_endpoint"`
		RegistrationEndpoint  string   `json:"registration_endpoint"`
		RevocationEndpoint    string   `json:"revocation_endpoint"`
		PKCE                  []string `json:"code_challenge_methods_supported"`
		AuthMethods           []string `json:"token_endpoint_auth_methods_supported"`
		Scopes                []string `json:"scopes_supported"`
		IssParameter          bool     `json:"authorization_response_iss_parameter_supported"`
	}
	if status := wkGetJSON(t, w.MetadataURL, &meta); status != http.StatusOK {
		t.Fatalf("GET %s: %d", w.MetadataURL, status)
	}
	if meta.Issuer != w.Issuer || meta.AuthorizationEndpoint != w.AuthURL || meta.TokenEndpoint != w.TokenURL ||
		meta.RegistrationEndpoint != w.RegistrationURL || meta.RevocationEndpoint != w.RevocationURL ||
		!slices.Contains(meta.PKCE, "S256") || !slices.Contains(meta.AuthMethods, "none") || !slices.Equal(meta.Scopes, []string{WorkerScope}) {
		t.Errorf("metadata: %+v", meta)
	}
	// 0.2.3 still advertises plain PKCE and has no RFC 9207 iss; 1.2.3 advertises S256 only, and iss.
	if want := w.Version == WorkerCurrent; meta.IssParameter != want || (len(meta.PKCE) == 1) != want {
		t.Errorf("%s: iss parameter supported %v, PKCE methods %v", w.Version, meta.IssParameter, meta.PKCE)
	}

	resp := wkPost(t, w.MCPURL, "", "application/json", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	challenge := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Bearer ") ||
		!strings.Contains(challenge, `resource_metadata="`+w.ResourceMetadataURL+`"`) {
		t.Errorf("unauthenticated MCP request: %d, challenge %q", resp.StatusCode, challenge)
	}
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		Scopes               []string `json:"scopes_supported"`
	}
	if status := wkGetJSON(t, w.ResourceMetadataURL, &prm); status != http.StatusOK ||
		prm.Resource != w.MCPURL || !slices.Equal(prm.AuthorizationServers, []string{w.Issuer}) || !slices.Equal(prm.Scopes, []string{WorkerScope}) {
		t.Errorf("GET %s: %d %+v", w.ResourceMetadataURL, status, prm)
	}
	// Only the path-inserted form of RFC 9728 §3.1 is served (the current library's choice; the 0.2.3
	// worker copies it).
	if status := wkGetJSON(t, w.Issuer+"/.well-known/oauth-protected-resource", nil); status != http.StatusNotFound {
		t.Errorf("root protected-resource metadata: %d, want 404", status)
	}
}

// wkLifecycle signs in, calls, refreshes three times, probes the grace of the previous refresh token,
// and revokes, checking each answer as a client would.
func wkLifecycle(t *testing.T, w *WorkerAS) {
	cb := wkListen(t)
	client := wkRegister(t, w, cb.URL)
	a := wkAuthorize(t, w, client, cb)
	if a.Status != http.StatusOK || cb.count() != 1 {
		t.Fatalf("authorize: %d %q", a.Status, a.Body)
	}
	q := a.Callback
	if q.Get("state") != a.State || q.Get("code") == "" {
		t.Fatalf("callback %v, want state %q and a code", q, a.State)
	}
	if iss := q.Get("iss"); (w.Version == WorkerCurrent && iss != w.Issuer) || (w.Version == Worker023 && iss != "") {
		t.Errorf("%s: callback iss = %q", w.Version, iss)
	}
	tok := wkExchange(t, w, client, a).mustOK(t)
	first := tok.AccessToken
	if text := wkMustEcho(t, w, first); text != "hello from authkeeper" {
		t.Fatalf("echo = %q", text)
	}

	// Three refreshes: a new refresh token each time, and a new access token that works.
	seen := map[string]bool{tok.RefreshToken: true}
	chain := []string{tok.RefreshToken}
	for i := range 3 {
		next := wkRefresh(t, w, client, chain[len(chain)-1]).mustOK(t)
		if seen[next.RefreshToken] {
			t.Fatalf("refresh %d returned a refresh token seen before: not rotating", i+1)
		}
		seen[next.RefreshToken] = true
		chain = append(chain, next.RefreshToken)
		wkMustEcho(t, w, next.AccessToken)
		tok = next
	}
	// Rotation did not end the first access token: it lives out its minute.
	wkMustEcho(t, w, first)
	// Two generations back is dead; the previous one (chain[2]) is still accepted once more, and that
	// kills the one issued after it (chain[3]).
	if r := wkRefresh(t, w, client, chain[1]); r.Error != "invalid_grant" {
		t.Errorf("refresh with the token two generations back: %d %s, want invalid_grant", r.Status, r.Error)
	}
	grace := wkRefresh(t, w, client, chain[2]).mustOK(t)
	if seen[grace.RefreshToken] {
		t.Error("the grace refresh returned a refresh token seen before")
	}
	if r := wkRefresh(t, w, client, chain[3]); r.Error != "invalid_grant" {
		t.Errorf("refresh with the token issued after the replayed one: %d %s, want invalid_grant", r.Status, r.Error)
	}
	tok = wkRefresh(t, w, client, grace.RefreshToken).mustOK(t)
	wkMustEcho(t, w, tok.AccessToken)
	wkMustEcho(t, w, grace.AccessToken)

	// RFC 7009: an access token alone, then the refresh token with its whole grant.
	wkRevoke(t, w, client, tok.AccessToken)
	wkMustBeRefused(t, w, tok.AccessToken)
	wkMustEcho(t, w, grace.AccessToken)
	wkRevoke(t, w, client, tok.RefreshToken)
	if r := wkRefresh(t, w, client, tok.RefreshToken); r.Error != "invalid_grant" {
		t.Errorf("refresh after revocation: %d %s, want invalid_grant", r.Status, r.Error)
	}
	wkMustBeRefused(t, w, grace.AccessToken)
	wkMustBeRefused(t, w, first)
	wkRevoke(t, w, client, tok.RefreshToken) // RFC 7009 §2.2: an unknown token is still a 200
}

// wkCodeReplay redeems a code twice. Both versions refuse the second time with invalid_grant; the
// current one also revokes the grant the code created (OAuth 2.1 §4.1.3), 0.2.3 leaves it alone.
func wkCodeReplay(t *testing.T, w *WorkerAS) {
	cb := wkListen(t)
	client := wkRegister(t, w, cb.URL)
	a := wkAuthorize(t, w, client, cb)
	tok := wkExchange(t, w, client, a).mustOK(t)
	if again := wkExchange(t, w, client, a); again.Error != "invalid_grant" {
		t.Fatalf("code replay: %d %s %q, want invalid_grant", again.Status, again.Error, again.ErrorDescription)
	}
	refresh := wkRefresh(t, w, client, tok.RefreshToken)
	switch w.Version {
	case WorkerCurrent:
		wkMustBeRefused(t, w, tok.AccessToken)
		if refresh.Error != "invalid_grant" {
			t.Errorf("refresh after a code replay: %d %s, want invalid_grant (grant revoked)", refresh.Status, refresh.Error)
		}
	case Worker023:
		wkMustEcho(t, w, tok.AccessToken)
		refresh.mustOK(t)
	}
}

// wkSecondSignIn signs the same client in twice. The current library revokes the first grant as
// soon as the second authorization is approved — before its code is redeemed (completeAuthorization's
// revokeExistingGrants, default true, for the same client, user and resource); 0.2.3 keeps both.
func wkSecondSignIn(t *testing.T, w *WorkerAS) {
	cb := wkListen(t)
	client := wkRegister(t, w, cb.URL)
	first := wkExchange(t, w, client, wkAuthorize(t, w, client, cb)).mustOK(t)
	second := wkAuthorize(t, w, client, cb)
	if second.Status != http.StatusOK {
		t.Fatalf("second authorization: %d %q", second.Status, second.Body)
	}
	refresh := wkRefresh(t, w, client, first.RefreshToken)
	switch w.Version {
	case WorkerCurrent:
		wkMustBeRefused(t, w, first.AccessToken)
		if refresh.Error != "invalid_grant" {
			t.Errorf("refresh of the first grant: %d %s, want invalid_grant (grant revoked)", refresh.Status, refresh.Error)
		}
	case Worker023:
		wkMustEcho(t, w, first.AccessToken)
		refresh.mustOK(t)
	}
	wkMustEcho(t, w, wkExchange(t, w, client, second).mustOK(t).AccessToken)
}

// wkExpires waits for tok, issued by wkSignIn, to be refused, and checks that it happened one
// access-token lifetime after issue (give or take the library's whole-second clock).
func wkExpires(t *testing.T, w *WorkerAS, tok wkTokenAnswer) {
	if testing.Short() {
		t.Skip("-short: not waiting a minute for the access token to expire")
	}
	if tok.ExpiresIn != int(WorkerAccessTokenTTL/time.Second) {
		t.Errorf("expires_in = %d, want %v", tok.ExpiresIn, WorkerAccessTokenTTL)
	}
	deadline := tok.issued.Add(WorkerAccessTokenTTL + 15*time.Second)
	for {
		status, challenge, _ := wkEcho(t, w, tok.AccessToken)
		age := time.Since(tok.issued)
		if status == http.StatusUnauthorized {
			if age < WorkerAccessTokenTTL-time.Second {
				t.Fatalf("refused after only %v", age.Round(time.Millisecond))
			}
			if !strings.Contains(challenge, `error="invalid_token"`) {
				t.Errorf("expired token challenge %q, want error=\"invalid_token\"", challenge)
			}
			t.Logf("access token refused %v after issue", age.Round(time.Millisecond))
			return
		}
		if status != http.StatusOK {
			t.Fatalf("echo with an unexpired token: %d", status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("access token still accepted %v after issue", age.Round(time.Millisecond))
		}
		time.Sleep(500 * time.Millisecond) // polling a real server's clock, not synchronizing goroutines
	}
}

// wkSignIn registers a client and signs in; the answer records when the token was requested.
func wkSignIn(t *testing.T, w *WorkerAS) wkTokenAnswer {
	t.Helper()
	cb := wkListen(t)
	client := wkRegister(t, w, cb.URL)
	a := wkAuthorize(t, w, client, cb)
	if a.Status != http.StatusOK {
		t.Fatalf("authorize: %d %q", a.Status, a.Body)
	}
	return wkExchange(t, w, client, a).mustOK(t)
}

// wkRegister registers a public native client for the exact redirect URI and returns its client_id.
func wkRegister(t *testing.T, w *WorkerAS, redirect string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"client_name": "authkeeper bench", "redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
	})
	resp := wkPost(t, w.RegistrationURL, "", "application/json", string(body))
	var reg struct {
		ClientID     string   `json:"client_id"`
		ClientSecret string   `json:"client_secret"`
		RedirectURIs []string `json:"redirect_uris"`
	}
	if err := json.Unmarshal(resp.body, &reg); err != nil || resp.StatusCode != http.StatusCreated || reg.ClientID == "" {
		t.Fatalf("register: %d %s (%v)", resp.StatusCode, resp.body, err)
	}
	if reg.ClientSecret != "" || !slices.Equal(reg.RedirectURIs, []string{redirect}) {
		t.Errorf("registered %+v, want a public client for %s", reg, redirect)
	}
	return reg.ClientID
}

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
