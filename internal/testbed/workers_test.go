package testbed

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
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
