package testbed

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
)

const benchResource = "http://127.0.0.1:9/mcp" // any loopback URL is a resource; nothing listens here

func TestAuthServerServesMetadataAtEveryDiscoveryLocation(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		locations  []string // relative to the server root
	}{
		{"root issuer", "", []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"}},
		{"path issuer", "/tenant1", []string{
			"/.well-known/oauth-authorization-server/tenant1", // RFC 8414 §3.1
			"/.well-known/openid-configuration/tenant1",
			"/tenant1/.well-known/openid-configuration", // OpenID Connect Discovery §4
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := NewAuthServer(t, AuthServerOptions{IssuerPath: tc.path, Scopes: []string{"files:read"}})
			root := strings.TrimSuffix(as.Issuer, tc.path)
			for _, loc := range tc.locations {
				var meta struct {
					Issuer              string   `json:"issuer"`
					IssParam            bool     `json:"authorization_response_iss_parameter_supported"`
					PKCE                []string `json:"code_challenge_methods_supported"`
					Scopes              []string `json:"scopes_supported"`
					Registration        string   `json:"registration_endpoint"`
					DeviceAuthorization string   `json:"device_authorization_endpoint"`
					Token               string   `json:"token_endpoint"`
				}
				if status := getJSON(t, root+loc, &meta); status != http.StatusOK {
					t.Fatalf("GET %s: %d", loc, status)
				}
				if meta.Issuer != as.Issuer || !meta.IssParam || !slices.Equal(meta.PKCE, []string{"S256"}) ||
					meta.Registration != as.RegistrationURL || meta.DeviceAuthorization != as.DeviceAuthURL ||
					meta.Token != as.TokenURL || !slices.Contains(meta.Scopes, "files:read") {
					t.Errorf("GET %s: %+v", loc, meta)
				}
			}
		})
	}
}

func TestAuthServerNativeLoginOnAnyLoopbackPortIssuesAudienceBoundJWT(t *testing.T) {
	for _, path := range []string{"", "/tenant1"} {
		t.Run("issuer path "+path, func(t *testing.T) {
			as := NewAuthServer(t, AuthServerOptions{IssuerPath: path})
			client := register(t, as, nativeClient())
			cb := newCallbackServer(t)
			b := NewBrowser(t, BrowserOptions{User: "bob"})

			tok, q := login(t, as, b, client, cb, benchResource)
			if q.Get("iss") != as.Issuer {
				t.Errorf("callback iss = %q, want %q (RFC 9207)", q.Get("iss"), as.Issuer)
			}
			if tok.RefreshToken == "" {
				t.Error("no refresh token, though the client registered the refresh_token grant")
			}
			claims := verifyJWT(t, as, tok.AccessToken)
			if aud, _ := claims.GetAudience(); !slices.Equal(aud, jwt.ClaimStrings{benchResource}) {
				t.Errorf("aud = %v, want [%s]", aud, benchResource)
			}
			if claims["sub"] != "bob" || claims["client_id"] != client.ID || claims["scope"] != "mcp:read mcp:write" {
				t.Errorf("claims = %v", claims)
			}
		})
	}
}

func TestAuthServerAuthorizationErrorsReachTheCallback(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{})
	client := register(t, as, nativeClient())
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	for _, tc := range []struct {
		name   string
		params []oauth2.AuthCodeOption
		want   string
	}{
		{"non-loopback resource", []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
			oauth2.SetAuthURLParam("resource", "https://mcp.example.com/")}, "invalid_target"},
		{"no PKCE", nil, "invalid_request"},
		{"plain PKCE", []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("code_challenge", challenge),
			oauth2.SetAuthURLParam("code_challenge_method", "plain")}, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cb := newCallbackServer(t)
			b := NewBrowser(t, BrowserOptions{})
			if err := b.Open(client.config(as, cb.URL).AuthCodeURL("s1", tc.params...)); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			if q := cb.last(t); q.Get("error") != tc.want || q.Get("state") != "s1" || q.Get("iss") != as.Issuer {
				t.Errorf("callback = %v, want error=%s", q, tc.want)
			}
		})
	}
}

func TestAuthServerAcceptsAnyLoopbackPortButNotAnotherHostOrPath(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{})
	client := register(t, as, nativeClient()) // http://127.0.0.1/callback
	cb := newCallbackServer(t)
	port := strings.TrimPrefix(strings.TrimSuffix(cb.URL, "/callback"), "http://127.0.0.1:")
	for _, tc := range []struct {
		redirect string
		ok       bool
	}{
		{cb.URL, true},
		{"http://localhost:" + port + "/callback", false},
		{"http://127.0.0.1:" + port + "/other", false},
	} {
		t.Run(tc.redirect, func(t *testing.T) {
			b := NewBrowser(t, BrowserOptions{})
			if err := b.Open(client.config(as, tc.redirect).AuthCodeURL("s1",
				oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))); err != nil {
				t.Fatal(err)
			}
			_, err := b.Wait(t.Context())
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "redirect_uri")) {
				t.Fatalf("Wait = %v, want the server's redirect_uri error page", err)
			}
		})
	}
}

func TestAuthServerRefreshRotatesAndReuseRevokesTheGrant(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{})
	client := register(t, as, nativeClient())
	tok, _ := login(t, as, NewBrowser(t, BrowserOptions{}), client, newCallbackServer(t), benchResource)

	fresh := refresh(t, as, client, tok.RefreshToken, benchResource).mustOK(t)
	if fresh.RefreshToken == "" || fresh.RefreshToken == tok.RefreshToken {
		t.Fatal("refresh did not rotate the refresh token")
	}
	if aud, _ := verifyJWT(t, as, fresh.AccessToken).GetAudience(); !slices.Equal(aud, jwt.ClaimStrings{benchResource}) {
		t.Errorf("refreshed aud = %v", aud)
	}
	if got := refresh(t, as, client, tok.RefreshToken, benchResource); got.Error != "invalid_grant" {
		t.Fatalf("replaying the rotated refresh token: %+v, want invalid_grant", got)
	}
	if got := refresh(t, as, client, fresh.RefreshToken, benchResource); got.Error != "invalid_grant" {
		t.Fatalf("the newest refresh token after reuse: %+v, want invalid_grant (grant revoked)", got)
	}
	if n := as.TokenRequests(t, "refresh_token"); n != 3 {
		t.Errorf("refresh_token requests = %d, want 3", n)
	}
	events := strings.Join(as.Events(t), "\n")
	for _, want := range []string{"refresh_token.rotated client=" + client.ID, "refresh_token.reused client=" + client.ID,
		"grant.revoked client=" + client.ID + " via=token"} {
		if !strings.Contains(events, want) {
			t.Errorf("events lack %q:\n%s", want, events)
		}
	}
}

func TestAuthServerNoRotationKeepsTheRefreshToken(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{NoRotation: true})
	client := register(t, as, nativeClient())
	tok, _ := login(t, as, NewBrowser(t, BrowserOptions{}), client, newCallbackServer(t), benchResource)
	for i := range 2 {
		got := refresh(t, as, client, tok.RefreshToken, benchResource).mustOK(t)
		if got.RefreshToken != tok.RefreshToken {
			t.Fatalf("refresh %d rotated the refresh token", i)
		}
	}
}

func TestAuthServerConfidentialClientsAuthenticate(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{})
	for _, method := range []string{"client_secret_basic", "client_secret_post"} {
		t.Run(method, func(t *testing.T) {
			meta := nativeClient()
			meta["token_endpoint_auth_method"] = method
			client := register(t, as, meta)
			if client.Secret == "" {
				t.Fatal("no client_secret registered")
			}
			tok, _ := login(t, as, NewBrowser(t, BrowserOptions{}), client, newCallbackServer(t), benchResource)
			refresh(t, as, client, tok.RefreshToken, benchResource).mustOK(t)
			client.Secret = "wrong"
			if got := refresh(t, as, client, tok.RefreshToken, benchResource); got.Error != "invalid_client" {
				t.Errorf("wrong secret: %+v, want invalid_client", got)
			}
		})
	}
}

func TestAuthServerOpaqueTokensIntrospectUntilRevoked(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{Opaque: true})
	client := register(t, as, nativeClient())
	tok, _ := login(t, as, NewBrowser(t, BrowserOptions{}), client, newCallbackServer(t), benchResource)
	if strings.Count(tok.AccessToken, ".") == 2 {
		t.Fatal("access token looks like a JWT in opaque mode")
	}
	if in := introspect(t, as, tok.AccessToken); in["active"] != true || in["aud"] != benchResource || in["client_id"] != client.ID {
		t.Fatalf("introspection = %v, want active for %s", in, benchResource)
	}
	as.Revoke(t, tok.AccessToken)
	if in := introspect(t, as, tok.AccessToken); in["active"] != false {
		t.Errorf("after revocation: %v, want inactive", in)
	}
	refresh(t, as, client, tok.RefreshToken, benchResource).mustOK(t) // revoking the access token spares the grant
	if !slices.Contains(as.Events(t), "access_token.revoked client="+client.ID) {
		t.Errorf("events = %v", as.Events(t))
	}
}

func TestAuthServerRevokingARefreshTokenRevokesTheGrant(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{Opaque: true})
	client := register(t, as, nativeClient())
	for _, tc := range []struct {
		name   string
		revoke func(t *testing.T, rt string)
		event  string
	}{
		{"by the client (RFC 7009)", func(t *testing.T, rt string) {
			resp, err := http.DefaultClient.Do(client.authenticate(t, as.RevocationURL, url.Values{"token": {rt}}))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("revocation: %s", resp.Status)
			}
		}, "grant.revoked client=" + client.ID + " via=revocation"},
		{"by the administrator", func(t *testing.T, rt string) { as.Revoke(t, rt) }, "grant.revoked client=resource-server via=revocation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, _ := login(t, as, NewBrowser(t, BrowserOptions{}), client, newCallbackServer(t), benchResource)
			tc.revoke(t, tok.RefreshToken)
			if got := refresh(t, as, client, tok.RefreshToken, benchResource); got.Error != "invalid_grant" {
				t.Errorf("refresh after revocation: %+v, want invalid_grant", got)
			}
			if in := introspect(t, as, tok.AccessToken); in["active"] != false {
				t.Errorf("access token of a revoked grant: %v, want inactive", in)
			}
			if !slices.Contains(as.Events(t), tc.event) {
				t.Errorf("events lack %q: %v", tc.event, as.Events(t))
			}
		})
	}
}

func TestAuthServerShortLivedTokenExpires(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{Opaque: true, AccessTokenTTL: 2 * time.Second})
	client := register(t, as, nativeClient())
	tok, _ := login(t, as, NewBrowser(t, BrowserOptions{}), client, newCallbackServer(t), benchResource)
	issued := time.Now()
	if ttl := time.Until(tok.Expiry); ttl > 2*time.Second || ttl < 0 {
		t.Errorf("expires in %v, want at most 2s", ttl)
	}
	if in := introspect(t, as, tok.AccessToken); in["active"] != true {
		t.Fatalf("fresh token: %v", in)
	}
	// Waiting on the real server's clock is the point here, so poll it.
	for introspect(t, as, tok.AccessToken)["active"] == true {
		if time.Since(issued) > 10*time.Second {
			t.Fatal("token still active 10s after it was issued with a 2s lifetime")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if d := time.Since(issued); d < time.Second {
		t.Errorf("token inactive after only %v", d)
	}
}

func TestAuthServerShortLivedRefreshTokenExpires(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{RefreshTokenTTL: 2 * time.Second, NoRotation: true})
	client := register(t, as, nativeClient())
	tok, _ := login(t, as, NewBrowser(t, BrowserOptions{}), client, newCallbackServer(t), benchResource)
	issued := time.Now()
	refresh(t, as, client, tok.RefreshToken, benchResource).mustOK(t)
	// Waiting on the real server's clock is the point here, so poll it.
	for {
		got := refresh(t, as, client, tok.RefreshToken, benchResource)
		if got.Status != 200 {
			if got.Error != "invalid_grant" {
				t.Fatalf("expired refresh token: %+v, want invalid_grant", got)
			}
			break
		}
		if time.Since(issued) > 10*time.Second {
			t.Fatal("refresh token still accepted 10s after it was issued with a 2s lifetime")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if d := time.Since(issued); d < time.Second {
		t.Errorf("refresh token refused after only %v", d)
	}
}

func TestAuthServerDeviceFlowCompletesInTheBrowser(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{DeviceInterval: time.Second})
	meta := nativeClient()
	meta["grant_types"] = []string{"authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"}
	client := register(t, as, meta)
	for _, tc := range []struct {
		name     string
		complete bool // open verification_uri_complete instead of typing the code
		deny     bool
		wantErr  string
	}{
		{name: "complete URI", complete: true},
		{name: "typed code"},
		{name: "denied", complete: true, deny: true, wantErr: "access_denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := client.config(as, "")
			res := oauth2.SetAuthURLParam("resource", benchResource)
			da, err := cfg.DeviceAuth(t.Context(), res)
			if err != nil {
				t.Fatal(err)
			}
			if da.Interval != 1 || da.UserCode == "" || !strings.HasPrefix(da.VerificationURIComplete, da.VerificationURI+"?user_code=") {
				t.Fatalf("device authorization = %+v", da)
			}
			b := NewBrowser(t, BrowserOptions{Deny: tc.deny})
			uri, code := da.VerificationURI, da.UserCode
			if tc.complete {
				uri, code = da.VerificationURIComplete, ""
			}
			if err := b.ApproveDevice(t.Context(), uri, code); err != nil {
				t.Fatal(err)
			}
			tok, err := cfg.DeviceAccessToken(t.Context(), da, res)
			if tc.wantErr != "" {
				if re := (*oauth2.RetrieveError)(nil); !errors.As(err, &re) || re.ErrorCode != tc.wantErr {
					t.Fatalf("DeviceAccessToken: %v, want %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if aud, _ := verifyJWT(t, as, tok.AccessToken).GetAudience(); !slices.Equal(aud, jwt.ClaimStrings{benchResource}) {
				t.Errorf("aud = %v", aud)
			}
		})
	}
}

func TestAuthServerFaultsAreServedThenCleared(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{})
	client := register(t, as, nativeClient())
	for _, tc := range []struct {
		name       string
		fault      Fault
		wantStatus int
		wantError  string // the OAuth error of the faulted answer, or "" for an unparsable body
		wantHeader string // Retry-After
		minDelay   time.Duration
	}{
		{name: "429 with Retry-After", fault: Fault{Endpoint: "token", Status: 429, RetryAfter: "2"},
			wantStatus: 429, wantError: "temporarily_unavailable", wantHeader: "2"},
		{name: "500", fault: Fault{Endpoint: "token", Status: 500}, wantStatus: 500, wantError: "server_error"},
		{name: "malformed body", fault: Fault{Endpoint: "token", Status: 200, Body: "{not json"}, wantStatus: 200},
		{name: "slow", fault: Fault{Endpoint: "token", Delay: 1500 * time.Millisecond},
			wantStatus: 400, wantError: "invalid_grant", minDelay: 1500 * time.Millisecond},
		{name: "two in a row", fault: Fault{Endpoint: "token", Status: 503, Count: 2}, wantStatus: 503, wantError: "temporarily_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := as.TokenRequests(t, "refresh_token")
			as.Fault(t, tc.fault)
			start := time.Now()
			got := refresh(t, as, client, "no-such-token", benchResource)
			if got.Status != tc.wantStatus || got.Error != tc.wantError || got.RetryAfter != tc.wantHeader {
				t.Errorf("faulted answer = %+v", got)
			}
			if d := time.Since(start); d < tc.minDelay {
				t.Errorf("answered after %v, want at least %v", d, tc.minDelay)
			}
			for range tc.fault.Count - 1 {
				if again := refresh(t, as, client, "no-such-token", benchResource); again.Status != tc.wantStatus {
					t.Errorf("repeat of a Count %d fault = %+v", tc.fault.Count, again)
				}
			}
			if after := refresh(t, as, client, "no-such-token", benchResource); after.Status != 400 || after.Error != "invalid_grant" {
				t.Errorf("after the fault = %+v, want the real invalid_grant", after)
			}
			if n := as.TokenRequests(t, "refresh_token") - before; n != max(1, tc.fault.Count)+1 {
				t.Errorf("counted %d refresh requests", n)
			}
		})
	}
	t.Run("until cleared", func(t *testing.T) {
		as.Fault(t, Fault{Endpoint: "oauth-authorization-server", Status: 404, Count: -1})
		for range 3 {
			if status := getJSON(t, as.Issuer+"/.well-known/oauth-authorization-server", nil); status != 404 {
				t.Fatalf("metadata = %d, want the faulted 404", status)
			}
		}
		as.ClearFaults(t)
		if status := getJSON(t, as.Issuer+"/.well-known/oauth-authorization-server", nil); status != 200 {
			t.Fatalf("metadata after ClearFaults = %d", status)
		}
	})
}

func TestAuthServerStopStartKeepsGrantsAndRestartForgetsClients(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{})
	client := register(t, as, nativeClient())
	tok, _ := login(t, as, NewBrowser(t, BrowserOptions{}), client, newCallbackServer(t), benchResource)

	as.Stop(t)
	if _, err := http.Get(as.JWKSURL); err == nil {
		t.Fatal("the stopped server answered")
	}
	as.Start(t)
	tok2 := refresh(t, as, client, tok.RefreshToken, benchResource).mustOK(t)

	as.Restart(t)
	verifyJWT(t, as, tok2.AccessToken) // same signing keys
	if got := refresh(t, as, client, tok2.RefreshToken, benchResource); got.Error != "invalid_client" {
		t.Errorf("refresh after Restart: %+v, want invalid_client", got)
	}
	if n := as.TokenRequests(t, "refresh_token"); n != 1 {
		t.Errorf("counters after Restart: %d refresh requests, want 1", n)
	}
	if out := as.Output(); !strings.Contains(out, "--- run 2 ---") || strings.Contains(out, tok2.RefreshToken) ||
		strings.Contains(out, tok2.AccessToken) {
		t.Error("Output lacks the second run, or shows a token")
	}
}

// verifyJWT checks an RFC 9068 access token's signature against the server's JWKS, and its issuer.
func verifyJWT(t *testing.T, as *AuthServer, token string) jwt.MapClaims {
	t.Helper()
	var set struct {
		Keys []struct{ Kid, N, E string }
	}
	if status := getJSON(t, as.JWKSURL, &set); status != 200 {
		t.Fatalf("JWKS: %d", status)
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(token, claims, func(tok *jwt.Token) (any, error) {
		for _, k := range set.Keys {
			if k.Kid == tok.Header["kid"] {
				n, err1 := base64.RawURLEncoding.DecodeString(k.N)
				e, err2 := base64.RawURLEncoding.DecodeString(k.E)
				return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, errors.Join(err1, err2)
			}
		}
		return nil, errors.New("unknown kid")
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(as.Issuer), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("access token does not verify: %v", err)
	}
	if tok.Header["typ"] != "at+jwt" {
		t.Errorf("typ = %v, want at+jwt (RFC 9068)", tok.Header["typ"])
	}
	return claims
}

// getJSON GETs u and decodes a 200 answer into out (if non-nil).
func getJSON(t *testing.T, u string, out any) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 && out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
	}
	return resp.StatusCode
}
