package oauth

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// TestLegacyServerWithoutResourceMetadataSignsIn pins issue 11 point 5 on the bench's 2025-03-26
// servers, whose AS is a real oidc-provider on the MCP server's origin: AS metadata at the origin, or
// none and the default endpoints /authorize, /token, /register. Sign-in and three refreshes.
func TestLegacyServerWithoutResourceMetadataSignsIn(t *testing.T) {
	for _, c := range []struct {
		mode  testbed.LegacyAuth
		want  []Quirk
		pkce  PKCESupport
		paths []string // the endpoints the grant must use
	}{
		{testbed.LegacyASMetadata, []Quirk{QuirkLegacyDiscovery}, PKCEAdvertised, []string{"/auth", "/token"}},
		{testbed.LegacyDefaultEndpoints, []Quirk{QuirkLegacyDiscovery, QuirkDefaultEndpoints, QuirkPKCEAssumed}, PKCEAssumed, []string{"/authorize", "/token"}},
	} {
		t.Run(string(c.mode), func(t *testing.T) {
			mcp := testbed.GoMCPServer(t, testbed.MCPServerOptions{Legacy: c.mode, RequiredScopes: []string{"mcp:read"}})
			browser := testbed.NewBrowser(t, testbed.BrowserOptions{})
			client, err := New(Config{Opener: browser, SignInTimeout: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			b := &bench{as: mcp.AuthServer, mcp: mcp, browser: browser, client: client}
			p := b.probe(t)
			origin := originOf(mcp.URL)
			if p.Resource != mcp.URL || p.AuthServer.Issuer != origin || p.PKCE != c.pkce || !slices.Equal(p.Quirks, c.want) {
				t.Fatalf("probe resource %q issuer %q pkce %q quirks %q", p.Resource, p.AuthServer.Issuer, p.PKCE, p.Quirks)
			}
			tok, g, err := client.SignIn(t.Context(), p, SignInOptions{ExtraScopes: []string{"mcp:read", "offline_access"}})
			if err != nil {
				t.Fatalf("SignIn: %v", err)
			}
			requireAccepted(t, mcp.URL, tok)
			if g.AuthorizationEndpoint != origin+c.paths[0] || g.TokenEndpoint != origin+c.paths[1] || g.Registration != RegistrationDynamic {
				t.Errorf("grant endpoints %q %q registration %q", g.AuthorizationEndpoint, g.TokenEndpoint, g.Registration)
			}
			requireQuirks(t, g, c.want...)
			refreshTimes(t, b, tok, g, 3)
		})
	}
}

// TestLegacyFallbackKeepsAPIKeyServersStatic: a server without any metadata whose /authorize does not
// answer as an AS — an API-key wall (401 everywhere), a web app's catch-all page (200 everywhere), a
// plain 404 — stays StaticToken. (Tiny servers: these are not authorization servers.)
func TestLegacyFallbackKeepsAPIKeyServersStatic(t *testing.T) {
	for _, c := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"APIKeyWall", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.WriteHeader(http.StatusUnauthorized)
		}},
		{"CatchAllPage", func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == "/mcp":
				w.WriteHeader(http.StatusUnauthorized)
				return
			case strings.HasPrefix(r.URL.Path, "/.well-known/oauth-protected-resource"):
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<!doctype html><title>app</title>"))
		}},
		{"NotFound", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/mcp" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="x"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			http.NotFound(w, r)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := serve(t, c.h)
			client, _ := New(Config{})
			p, err := client.Probe(t.Context(), srv.URL+"/mcp")
			if err != nil || p.Requirement != StaticToken || !strings.Contains(p.Reason, "HTTP 401") {
				t.Fatalf("Probe = %+v, %v; want StaticToken", p, err)
			}
		})
	}
}
