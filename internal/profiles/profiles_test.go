package profiles

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/e2e"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/oauth"
)

// TestProfileEntraID: a pre-registered public client (no DCR), no PKCE advertised, `resource`
// refused at /authorize and /token, scope required on every refresh, the /organizations metadata's
// {tenantid} issuer template, api://<app>/.default scopes. The user gives the client id, the scope
// and --assume-pkce (the bench's AS is not on login.microsoftonline.com, whose PKCE support authkeeper
// knows by itself). Entra has no RFC 7009 endpoint: signing out forgets the tokens.
func TestProfileEntraID(t *testing.T) {
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{Profile: testbed.ProfileEntra})
	srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: as.Issuer, AdvertiseAS: as.AdvertisedIssuer})
	as.SetResource(t, srv.URL)
	in := e2e.NewInstall(t, e2e.Options{})
	exercise(t, in, row{
		name: "entra", url: srv.URL,
		args:      []string{"--client-id", as.Clients[0].ID, "--scope", as.AppScope + " offline_access", "--assume-pkce"},
		quirks:    []oauth.Quirk{oauth.QuirkPKCEAssumed, oauth.QuirkResourceOmitted, oauth.QuirkScopeOnRefresh, oauth.QuirkIssuerTemplate},
		refreshes: true,
	})
}

// TestProfileAtlassian: the metadata's issuer is not the one the resource metadata advertises; DCR;
// rotating refresh tokens with reuse detection; revocation.
func TestProfileAtlassian(t *testing.T) {
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{Profile: testbed.ProfileAtlassian})
	srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: as.Issuer, AdvertiseAS: as.AdvertisedIssuer, RequiredScopes: read})
	in := e2e.NewInstall(t, e2e.Options{})
	exercise(t, in, row{name: "atlassian", url: srv.URL, quirks: []oauth.Quirk{oauth.QuirkIssuerMismatch},
		refreshes: true, revocation: true})
	if reused := countPrefix(as.Events(t), "refresh_token.reused"); reused != 0 {
		t.Errorf("%d refresh tokens reused at the AS", reused)
	}
}

// TestProfileSlack: an issuer mismatch, a pre-registered confidential client (its secret from the
// environment), token errors answered with HTTP 200, the resource advertised as the bare origin, and
// no revocation endpoint.
func TestProfileSlack(t *testing.T) {
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{Profile: testbed.ProfileSlack})
	srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: as.Issuer, AdvertiseAS: as.AdvertisedIssuer, OriginResource: true, RequiredScopes: read})
	in := e2e.NewInstall(t, e2e.Options{})
	c := as.Clients[0]
	exercise(t, in, row{name: "slack", url: srv.URL, args: []string{"--client-id", c.ID},
		env: []string{"AUTHKEEPER_CLIENT_SECRET=" + c.Secret}, quirks: []oauth.Quirk{oauth.QuirkIssuerMismatch},
		refreshes: true})
}

// TestProfileGitHub: a pre-registered OAuth app with a secret (client_secret_post only), opaque tokens
// without expiry or refresh token, comma-separated scopes, errors with HTTP 200, no revocation
// endpoint. The token is kept until the server refuses it; then exactly one needs-sign-in.
func TestProfileGitHub(t *testing.T) {
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{Profile: testbed.ProfileGitHub})
	id, secret := as.IntrospectionClient()
	srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: as.Issuer, Opaque: true, RequiredScopes: read,
		IntrospectionClientID: id, IntrospectionClientSecret: secret})
	as.SetResource(t, srv.URL)
	in := e2e.NewInstall(t, e2e.Options{})
	c := as.Clients[0]
	r := row{name: "github", url: srv.URL, args: []string{"--client-id", c.ID},
		env: []string{"AUTHKEEPER_CLIENT_SECRET=" + c.Secret}, quirks: []oauth.Quirk{oauth.QuirkNoExpiry}}
	exercise(t, in, r)

	// GitHub revokes a token outside OAuth (the user removes the app): the server then refuses it,
	// and authkeeper asks for one sign-in — not a refresh loop.
	agent := in.Connect(t, r.name)
	agent.MustEcho(t, "before revocation")
	as.Revoke(t, in.HeadersToken(t, r.name))
	for i := 0; i < 3; i++ {
		if _, err := agent.Echo(t.Context(), "revoked"); err == nil {
			t.Fatal("a call with a revoked token succeeded")
		}
	}
	if n := in.CountEvents(engine.EventNeedsSignIn, r.name) + in.CountEvents(engine.EventRevoked, r.name); n != 1 {
		t.Errorf("%d needs-sign-in/revoked events after three refused calls, want exactly 1", n)
	}
	if n := as.TokenRequests(t, "refresh_token"); n != 0 {
		t.Errorf("%d refresh requests for a grant without a refresh token", n)
	}
}

// TestProfileAuth0: the API's audience is a parameter (`resource` is ignored); without it the token is
// not for the MCP server.
func TestProfileAuth0(t *testing.T) {
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{Profile: testbed.ProfileAuth0})
	srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: as.Issuer, RequiredScopes: read})
	in := e2e.NewInstall(t, e2e.Options{})
	exercise(t, in, row{name: "auth0", url: srv.URL, args: []string{"--param", "audience=" + srv.URL},
		refreshes: true, revocation: true})
	for _, u := range in.Browser.Opened() {
		if !strings.Contains(u, "audience=") {
			t.Errorf("an authorization request without the audience parameter: %s", u)
		}
	}
}

// TestProfile20250326Server: a server of the 2025-03-26 revision publishes no protected-resource
// metadata; its authorization server's metadata is at its own origin (metadata), or there is none and
// the default /authorize, /token and /register serve (default endpoints).
func TestProfile20250326Server(t *testing.T) {
	for _, tc := range []struct {
		mode   testbed.LegacyAuth
		quirks []oauth.Quirk
		// Without metadata there is no revocation endpoint to know of: signing out forgets.
		revocation bool
	}{
		{testbed.LegacyASMetadata, []oauth.Quirk{oauth.QuirkLegacyDiscovery}, true},
		{testbed.LegacyDefaultEndpoints, []oauth.Quirk{oauth.QuirkDefaultEndpoints}, false},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Legacy: tc.mode, RequiredScopes: read})
			in := e2e.NewInstall(t, e2e.Options{})
			exercise(t, in, row{name: "legacy", url: srv.URL, quirks: tc.quirks, refreshes: true, revocation: tc.revocation})
		})
	}
}

// TestProfileCIMDOnOIDCProvider: with a Client ID Metadata Document URL set, an AS that supports CIMD
// gets that URL as client id (no registration); oidc-provider fetches the document authkeeper ships.
func TestProfileCIMDOnOIDCProvider(t *testing.T) {
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{Profile: testbed.ProfileCIMD})
	srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: as.Issuer, RequiredScopes: read})
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "client-metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatalf("docs/client-metadata.json: %v", err)
	}
	delete(m, "client_id") // the fixture sets the URL it serves the document at
	doc, _ = json.Marshal(m)
	cimd := as.PublishClientMetadata(t, doc)
	in := e2e.NewInstall(t, e2e.Options{ServeArgs: []string{"--client-metadata-url", cimd}})
	exercise(t, in, row{name: "cimd", url: srv.URL, refreshes: true, revocation: true})
	if rec := record(t, "cimd"); rec.Binding.ClientID != cimd {
		t.Errorf("client id %q, want the metadata document's URL %q", rec.Binding.ClientID, cimd)
	}
	if as.ClientMetadataRequests() == 0 {
		t.Error("the AS never fetched the client metadata document")
	}
	for _, ev := range as.Events(t) {
		if strings.HasPrefix(ev, "client.registered") {
			t.Errorf("a client was registered dynamically although CIMD was offered: %s", ev)
		}
	}
}

// TestProfileWorkersOAuthProvider: Cloudflare's workers-oauth-provider under workerd — the current
// release, and 0.2.3, which matches redirect URIs exactly (the registered loopback port must be reused).
func TestProfileWorkersOAuthProvider(t *testing.T) {
	for _, v := range []testbed.WorkerVersion{testbed.WorkerCurrent, testbed.Worker023} {
		t.Run(string(v), func(t *testing.T) {
			w := testbed.NewWorkerAS(t, testbed.WorkerOptions{Version: v})
			in := e2e.NewInstall(t, e2e.Options{})
			exercise(t, in, row{name: "worker", url: w.MCPURL, refreshes: true, revocation: true})
			if rec := record(t, "worker"); rec.Binding.RedirectPort == 0 {
				t.Error("the registered redirect port was not kept with the grant")
			}
		})
	}
}

// read is the scope every bench server asks of its tokens, as real servers name at least one scope in
// their metadata (oidc-provider grants nothing to a request for offline_access alone).
var read = []string{"mcp:read"}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}
