package testbed

import (
	"net/http"
	"testing"
)

// LegacyAuth selects how a server of the 2025-03-26 revision of the MCP specification exposes its
// authorization server. Such a server publishes no protected-resource metadata (every
// /.well-known/oauth-protected-resource path answers 404), its 401 challenge is a bare `Bearer`
// without resource_metadata, and its authorization server lives at its own origin: a client takes
// the MCP URL's origin as the authorization base URL and finds the AS metadata there, or else uses
// the default endpoints /authorize, /token and /register (2025-03-26, Authorization §2.3.2 and §2.3.3).
//
// On the bench that authorization server is a real oidc-provider whose issuer is the MCP server's
// origin (AuthServerOptions.IssuerOrigin), started with the MCP server (MCPServer.AuthServer) and
// reached through its reverse proxy (AuthServer.ReverseProxy) on the MCP server's own port, so every
// URL it builds — metadata endpoints, login pages, redirects — is on the MCP origin, and tokens carry
// that origin as iss.
type LegacyAuth string

const (
	// LegacyNone is a current server, with protected-resource metadata.
	LegacyNone LegacyAuth = ""
	// LegacyASMetadata serves the AS metadata at the MCP origin's
	// /.well-known/oauth-authorization-server (and OpenID configuration), issuer = the MCP origin,
	// naming oidc-provider's own endpoints there (/auth, /token, /reg, …). /authorize and /register
	// answer 404, so a client that guessed the default endpoints instead of reading the metadata
	// fails (/token is shared by both).
	LegacyASMetadata LegacyAuth = "metadata"
	// LegacyDefaultEndpoints serves no AS metadata at all (404 at every well-known AS location); the
	// AS runs under ProfileLegacy, so oidc-provider itself serves /authorize, /token and /register.
	// The rest of it (login pages, /jwks, revocation, introspection) is proxied as well.
	LegacyDefaultEndpoints LegacyAuth = "default-endpoints"
)

// mountLegacyFront adds to mux, beside the MCP endpoint, what a Legacy server serves at its origin:
// 404 for the protected-resource metadata and, according to mode, the authorization server as, whose
// issuer is that origin, through its reverse proxy.
func mountLegacyFront(mux *http.ServeMux, mode LegacyAuth, as *AuthServer) {
	notFound := http.NotFoundHandler()
	for _, p := range []string{"/.well-known/oauth-protected-resource", "/__testbed"} {
		mux.Handle(p, notFound)
		mux.Handle(p+"/", notFound) // the path-inserted forms; the AS's test hooks stay on its listener
	}
	switch mode {
	case LegacyASMetadata:
		// The metadata names oidc-provider's /auth and /reg: a client that guesses the default
		// endpoints instead of reading it must fail.
		mux.Handle("/authorize", notFound)
		mux.Handle("/register", notFound)
	case LegacyDefaultEndpoints:
		for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
			mux.Handle(p, notFound)
			mux.Handle(p+"/", notFound)
		}
	}
	mux.Handle("/", as.ReverseProxy())
}

// startFrontedAuthServer starts the authorization server of a Legacy server whose origin is origin:
// an AS whose issuer is origin (AuthServerOptions.IssuerOrigin), under ProfileLegacy — oidc-provider
// at the default endpoint paths — for LegacyDefaultEndpoints. It returns the AS and the URL its
// metadata is discovered at by the MCP server itself: the AS's own listener, since the front may
// hide the metadata.
func startFrontedAuthServer(t testing.TB, origin string, mode LegacyAuth, o AuthServerOptions) (*AuthServer, string) {
	t.Helper()
	if o.IssuerOrigin != "" || o.IssuerPath != "" {
		t.Fatal("MCPServerOptions.LegacyAS: the issuer of a Legacy server's AS is the server's origin; leave IssuerOrigin and IssuerPath unset")
	}
	o.IssuerOrigin = origin
	if mode == LegacyDefaultEndpoints {
		if o.Profile != ProfileDefault && o.Profile != ProfileLegacy {
			t.Fatalf("MCPServerOptions.LegacyAS.Profile %q: LegacyDefaultEndpoints needs ProfileLegacy", o.Profile)
		}
		o.Profile = ProfileLegacy
	}
	as := NewAuthServer(t, o)
	return as, as.ListenURL
}
