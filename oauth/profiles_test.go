package oauth

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// refreshTimes refreshes n times, requiring each new token to work at the MCP server, and returns the
// last token and grant.
func refreshTimes(t *testing.T, b *bench, tok Token, g Grant, n int) (Token, Grant) {
	t.Helper()
	for i := range n {
		var err error
		if tok, g, err = b.client.Refresh(t.Context(), g, tok.RefreshToken); err != nil {
			t.Fatalf("refresh %d: %v", i+1, err)
		}
		requireAccepted(t, b.mcp.URL, tok)
	}
	return tok, g
}

func requireQuirks(t *testing.T, g Grant, want ...Quirk) {
	t.Helper()
	for _, q := range want {
		if !g.HasQuirk(q) {
			t.Errorf("grant quirks %q lack %q", g.Quirks, q)
		}
	}
}

func queryOf(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// TestEntraProfileSignsInRefreshesThriceWithItsQuirks runs the Entra ID profile end to end: a
// pre-registered public client, metadata without PKCE methods under a {tenantid} template issuer,
// `resource` refused on /authorize (the browser is asked twice) and on /token, scope required on every
// refresh, api://…/.default scopes. Known: 127.0.0.1 is configured as an Entra host, so PKCE is assumed
// and scope is sent from the first refresh. UserChoice: an unknown host needs AssumePKCE, and the first
// refresh learns that scope is needed.
func TestEntraProfileSignsInRefreshesThriceWithItsQuirks(t *testing.T) {
	for _, known := range []bool{true, false} {
		t.Run(map[bool]string{true: "Known", false: "UserChoice"}[known], func(t *testing.T) {
			cfg := Config{}
			if known {
				cfg.PKCEAssumedIssuers = []string{"127.0.0.1"}
			}
			b := newBench(t, benchOptions{as: testbed.AuthServerOptions{Profile: testbed.ProfileEntra}, cfg: cfg})
			p := b.probe(t)
			wantPKCE := map[bool]PKCESupport{true: PKCEAssumed, false: PKCEMissing}[known]
			if p.PKCE != wantPKCE || !strings.Contains(p.AuthServer.Issuer, "{tenantid}") || !slices.Contains(p.Quirks, QuirkIssuerTemplate) {
				t.Fatalf("probe PKCE %q issuer %q quirks %q", p.PKCE, p.AuthServer.Issuer, p.Quirks)
			}
			sc := StaticClient{ID: b.as.Clients[0].ID}
			opts := SignInOptions{Client: &sc, ExtraScopes: []string{b.as.AppScope}}
			if !known {
				_, _, err := b.client.SignIn(t.Context(), p, opts)
				if !errors.Is(err, ErrNoPKCE) || !errors.Is(err, ErrMisconfigured) || !strings.Contains(err.Error(), "--assume-pkce") {
					t.Fatalf("SignIn without AssumePKCE = %v, want ErrNoPKCE naming --assume-pkce", err)
				}
				if n := len(b.browser.Opened()); n != 0 {
					t.Fatalf("the browser opened %d times for a refused sign-in", n)
				}
				opts.AssumePKCE = true
			}
			tok, g, err := b.client.SignIn(t.Context(), p, opts)
			if err != nil {
				t.Fatalf("SignIn: %v", err)
			}
			requireAccepted(t, b.mcp.URL, tok)
			requireQuirks(t, g, QuirkPKCEAssumed, QuirkIssuerTemplate, QuirkResourceOmitted)
			if !g.OmitResource || g.TenantIssuer != b.as.Issuer || g.Registration != RegistrationStatic || g.ScopeOnRefresh != known {
				t.Errorf("grant = %v, tenant %q scope-on-refresh %t", g, g.TenantIssuer, g.ScopeOnRefresh)
			}
			// The first authorization request carried resource and was refused on the redirect; the
			// second went without it, with the .default scope and offline_access only (AADSTS70011).
			opened := b.browser.Opened()
			if len(opened) != 2 || queryOf(t, opened[0]).Get("resource") == "" || queryOf(t, opened[1]).Has("resource") {
				t.Fatalf("opened %q, want one request with resource then one without", opened)
			}
			if got := queryOf(t, opened[1]).Get("scope"); got != "offline_access "+b.as.AppScope {
				t.Errorf("scope = %q, want offline_access and the .default scope alone", got)
			}
			if q0, q1 := queryOf(t, opened[0]), queryOf(t, opened[1]); q0.Get("redirect_uri") != q1.Get("redirect_uri") || q0.Get("state") == q1.Get("state") {
				t.Errorf("the retry changed listener or kept the state: %q, %q", q0.Get("redirect_uri"), q1.Get("redirect_uri"))
			}
			if v, _ := b.browser.Wait(t.Context()); !strings.Contains(v.Body, "One more step") {
				t.Errorf("first callback page = %d %q, want the retry page", v.Status, v.Body)
			}
			before := b.as.TokenRequests(t, "refresh_token")
			tok, g = refreshTimes(t, b, tok, g, 1)
			wantFirst := map[bool]int{true: 1, false: 2}[known] // unknown: refused without scope, then with it
			if n := b.as.TokenRequests(t, "refresh_token") - before; n != wantFirst || !g.ScopeOnRefresh {
				t.Errorf("first refresh took %d requests (want %d), scope-on-refresh %t", n, wantFirst, g.ScopeOnRefresh)
			}
			requireQuirks(t, g, QuirkScopeOnRefresh)
			_, g = refreshTimes(t, b, tok, g, 2)
			if n := b.as.TokenRequests(t, "refresh_token") - before; n != wantFirst+2 {
				t.Errorf("%d refresh requests in all, want %d", n, wantFirst+2)
			}
			if g.Rotation != RotationRotating {
				t.Errorf("rotation = %q, want rotating (Entra renews the refresh token)", g.Rotation)
			}
			if err := b.client.Revoke(t.Context(), g, tok); !errors.Is(err, ErrRevocationUnsupported) {
				t.Errorf("Revoke = %v, want ErrRevocationUnsupported (Entra has no RFC 7009 endpoint)", err)
			}
		})
	}
}

// TestIssuerMismatchProfilesSignInBoundToTheMetadataIssuer: Atlassian (DCR, rotating refresh tokens)
// and Slack (pre-registered, errors in HTTP 200, no revocation) advertise another issuer than their
// metadata's. The grant is bound to the metadata's issuer and RFC 9207 iss is checked against it.
func TestIssuerMismatchProfilesSignInBoundToTheMetadataIssuer(t *testing.T) {
	for _, profile := range []testbed.Profile{testbed.ProfileAtlassian, testbed.ProfileSlack} {
		t.Run(string(profile), func(t *testing.T) {
			b := newBench(t, benchOptions{as: testbed.AuthServerOptions{Profile: profile}})
			p := b.probe(t)
			if p.AuthServer.Issuer != b.as.Issuer || p.AdvertisedIssuer != b.as.AdvertisedIssuer || p.AdvertisedIssuer == p.AuthServer.Issuer {
				t.Fatalf("probe issuer %q advertised %q", p.AuthServer.Issuer, p.AdvertisedIssuer)
			}
			var opts SignInOptions
			if profile == testbed.ProfileSlack {
				c := b.as.Clients[0]
				opts.Client = &StaticClient{ID: c.ID, Secret: c.Secret, AuthMethod: AuthMethod(c.AuthMethod)}
			}
			tok, g, err := b.client.SignIn(t.Context(), p, opts)
			if err != nil {
				t.Fatalf("SignIn: %v", err)
			}
			requireAccepted(t, b.mcp.URL, tok)
			requireQuirks(t, g, QuirkIssuerMismatch)
			if g.Issuer != b.as.Issuer || g.AdvertisedIssuer != b.as.AdvertisedIssuer {
				t.Errorf("grant issuer %q advertised %q", g.Issuer, g.AdvertisedIssuer)
			}
			first := tok
			tok, g = refreshTimes(t, b, tok, g, 3)
			if g.Rotation != RotationRotating {
				t.Errorf("rotation = %q, want rotating", g.Rotation)
			}
			switch profile {
			case testbed.ProfileAtlassian:
				if err := b.client.Revoke(t.Context(), g, tok); err != nil {
					t.Fatalf("Revoke: %v", err)
				}
				if _, _, err := b.client.Refresh(t.Context(), g, tok.RefreshToken); !errors.Is(err, ErrReauthRequired) {
					t.Errorf("Refresh after Revoke = %v, want re-auth", err)
				}
			case testbed.ProfileSlack:
				// A spent refresh token: Slack answers HTTP 200 {"ok":false,"error":"invalid_grant"}.
				_, _, err := b.client.Refresh(t.Context(), g, first.RefreshToken)
				var oe *Error
				if !errors.As(err, &oe) || oe.Status != http.StatusOK || !errors.Is(err, ErrReauthRequired) {
					t.Errorf("Refresh with a spent token = %#v, want re-auth from an HTTP 200 error", err)
				}
				if err := b.client.Revoke(t.Context(), g, tok); !errors.Is(err, ErrRevocationUnsupported) {
					t.Errorf("Revoke = %v, want ErrRevocationUnsupported", err)
				}
			}
			// Mix-up protection holds: a callback naming the advertised issuer is refused.
			b.browser.SetOptions(testbed.BrowserOptions{Tamper: func(u *url.URL) {
				q := u.Query()
				q.Set("iss", b.as.AdvertisedIssuer)
				u.RawQuery = q.Encode()
			}})
			if _, _, err := b.client.SignIn(t.Context(), b.probe(t), opts); !errors.Is(err, ErrIssuerMismatch) {
				t.Errorf("SignIn with iss = the advertised issuer: %v, want ErrIssuerMismatch", err)
			}
		})
	}
}

// TestGitHubProfileTokenNeverExpires: a pre-registered OAuth app with a secret (client_secret_post, the
// only method its metadata lists), tokens without expires_in or refresh token and with comma-separated
// scopes. The token has no expiry and stays valid; there is nothing to refresh or revoke.
func TestGitHubProfileTokenNeverExpires(t *testing.T) {
	b := newBench(t, benchOptions{as: testbed.AuthServerOptions{Profile: testbed.ProfileGitHub}})
	c := b.as.Clients[0]
	tok, g := b.signIn(t, SignInOptions{Client: &StaticClient{ID: c.ID, Secret: c.Secret}})
	requireAccepted(t, b.mcp.URL, tok)
	if g.AuthMethod != AuthClientSecretPost {
		t.Errorf("auth method = %q, want client_secret_post from the metadata", g.AuthMethod)
	}
	if !tok.Expiry.IsZero() || tok.RefreshToken != "" || !tok.Valid(time.Now().Add(100*24*time.Hour), time.Minute) {
		t.Errorf("token = %v, want no expiry, no refresh token, valid", tok)
	}
	if !slices.Contains(tok.Scopes, "mcp:read") || slices.ContainsFunc(tok.Scopes, func(s string) bool { return strings.Contains(s, ",") }) {
		t.Errorf("scopes = %q, want the comma-separated list split", tok.Scopes)
	}
	requireQuirks(t, g, QuirkNoExpiry)
	if _, _, err := b.client.Refresh(t.Context(), g, tok.RefreshToken); !errors.Is(err, ErrReauthRequired) {
		t.Errorf("Refresh = %v, want re-auth (no refresh token)", err)
	}
	if err := b.client.Revoke(t.Context(), g, tok); !errors.Is(err, ErrRevocationUnsupported) {
		t.Errorf("Revoke = %v, want ErrRevocationUnsupported", err)
	}
}

// TestAuth0ProfileNeedsTheAudienceParameter: the audience parameter, sent on the authorization request
// and every token request, makes the token the MCP server's; without it the server refuses the token.
func TestAuth0ProfileNeedsTheAudienceParameter(t *testing.T) {
	b := newBench(t, benchOptions{as: testbed.AuthServerOptions{Profile: testbed.ProfileAuth0}})
	// Without audience the AS grants no resource scope (oidc-provider then denies the authorization)
	// or an opaque token the server refuses.
	if tok, _, err := b.client.SignIn(t.Context(), b.probe(t), SignInOptions{}); err == nil {
		if status, _ := mcpInitialize(t, b.mcp.URL, tok.AccessToken); status != http.StatusUnauthorized {
			t.Fatalf("MCP server answered %d to a token without audience, want 401", status)
		}
	}
	tok, g := b.signIn(t, SignInOptions{ExtraParams: map[string]string{"audience": b.mcp.Resource}})
	requireAccepted(t, b.mcp.URL, tok)
	if q := queryOf(t, b.browser.Opened()[1]); q.Get("audience") != b.mcp.Resource {
		t.Errorf("authorization request audience = %q", q.Get("audience"))
	}
	if g.ExtraParams["audience"] != b.mcp.Resource {
		t.Errorf("grant extra params = %v", g.ExtraParams)
	}
	_, g = refreshTimes(t, b, tok, g, 3)
	if g.ExtraParams["audience"] != b.mcp.Resource {
		t.Errorf("grant lost its extra params: %v", g.ExtraParams)
	}
	// A parameter the protocol sets cannot be given.
	if _, _, err := b.client.SignIn(t.Context(), b.probe(t), SignInOptions{ExtraParams: map[string]string{"resource": "x"}}); !errors.Is(err, ErrMisconfigured) {
		t.Errorf("SignIn with ExtraParams resource = %v, want misconfigured", err)
	}
}

// TestDeviceAuthorizationRetriesWithoutResourceWhenRefused: the device authorization endpoint refusing
// `resource` the way Entra v2 does is asked once more without it, and the grant remembers.
func TestDeviceAuthorizationRetriesWithoutResourceWhenRefused(t *testing.T) {
	b := newBench(t, benchOptions{})
	p := b.probe(t)
	b.as.Fault(t, testbed.Fault{Endpoint: "device_authorization", Status: 400, Body: `{"error":"invalid_target",` +
		`"error_description":"AADSTS9010010: The resource parameter provided in the request doesn't match with the requested scopes."}`})
	d, err := b.client.StartDevice(t.Context(), p, SignInOptions{})
	if err != nil {
		t.Fatalf("StartDevice: %v", err)
	}
	if !d.grant.OmitResource || !d.grant.HasQuirk(QuirkResourceOmitted) || b.as.Stats(t).Requests["device_authorization"] != 2 {
		t.Errorf("grant %v after a refused resource; want it omitted after 2 requests", d.grant)
	}
}
