package testbed

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The fixtures' deviations from a plain current MCP server, each proven with raw HTTP requests and a
// token from the real authorization server, signed in through the scripted browser.

func TestMCPServerMetadataAdvertisesOverriddenAuthorizationServer(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{})
	const advertised = "https://auth.example.com" // Atlassian names an AS whose metadata says otherwise
	for _, impl := range mcpImpls {
		t.Run(impl.name, func(t *testing.T) {
			srv := impl.start(t, MCPServerOptions{Issuer: as.Issuer, AdvertiseAS: advertised})
			prm := mcpResourceMetadata(t, srv.ResourceMetadataURL)
			want := mcpPRM{Resource: srv.URL, AuthorizationServers: []string{advertised}}
			if diff := cmp.Diff(want, prm); diff != "" {
				t.Errorf("protected resource metadata (-want +got):\n%s", diff)
			}
			// Tokens are still those of the real issuer.
			tok := issueMCPToken(t, as, srv.Resource, "mcp:read")
			if r := mcpInitialize(t, srv.URL, tok.AccessToken); r.status != http.StatusOK {
				t.Errorf("initialize with the issuer's token: status %d, want 200", r.status)
			}
		})
	}
}

func TestMCPServerOriginResourceNamesBareOriginAndWantsItAsAudience(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{})
	for _, impl := range mcpImpls {
		t.Run(impl.name, func(t *testing.T) {
			srv := impl.start(t, MCPServerOptions{Issuer: as.Issuer, OriginResource: true})
			origin := strings.TrimSuffix(srv.URL, "/mcp")
			if srv.Resource != origin || srv.ResourceMetadataURL != origin+"/.well-known/oauth-protected-resource" {
				t.Fatalf("Resource %q, ResourceMetadataURL %q; want the origin and its root metadata", srv.Resource, srv.ResourceMetadataURL)
			}
			r := mcpInitialize(t, srv.URL, "")
			if r.status != http.StatusUnauthorized || !strings.Contains(r.challenge, fmt.Sprintf("resource_metadata=%q", srv.ResourceMetadataURL)) {
				t.Errorf("no token: status %d, challenge %q; want 401 naming %s", r.status, r.challenge, srv.ResourceMetadataURL)
			}
			want := mcpPRM{Resource: origin, AuthorizationServers: []string{as.Issuer}}
			if diff := cmp.Diff(want, mcpResourceMetadata(t, srv.ResourceMetadataURL)); diff != "" {
				t.Errorf("protected resource metadata (-want +got):\n%s", diff)
			}
			if code := mcpGetStatus(t, origin+"/.well-known/oauth-protected-resource/mcp"); code != http.StatusNotFound {
				t.Errorf("path-inserted metadata: status %d, want 404", code)
			}

			forOrigin := issueMCPToken(t, as, origin, "mcp:read")
			if r := mcpInitialize(t, srv.URL, forOrigin.AccessToken); r.status != http.StatusOK {
				t.Errorf("token for the origin: status %d, want 200", r.status)
			}
			forEndpoint := issueMCPToken(t, as, srv.URL, "mcp:read")
			if r := mcpInitialize(t, srv.URL, forEndpoint.AccessToken); r.status != http.StatusUnauthorized {
				t.Errorf("token for the endpoint URL: status %d, want 401", r.status)
			}
		})
	}
}

func TestMCPServerPartialAuthAsksATokenOnlyForToolCalls(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{})
	for _, impl := range mcpImpls {
		t.Run(impl.name, func(t *testing.T) {
			srv := impl.start(t, MCPServerOptions{Issuer: as.Issuer, ProtectedMethods: []string{"tools/call"}})
			init := mcpInitialize(t, srv.URL, "")
			if init.status != http.StatusOK || init.session == "" {
				t.Fatalf("initialize without token: status %d, session %q; want 200 and a session", init.status, init.session)
			}
			h := http.Header{"Mcp-Session-Id": {init.session}, "Mcp-Protocol-Version": {"2025-06-18"}}
			if r := mcpSend(t, http.MethodPost, srv.URL, "", h, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); r.status != http.StatusAccepted {
				t.Fatalf("initialized without token: status %d, want 202", r.status)
			}
			list := mcpSend(t, http.MethodPost, srv.URL, "", h, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
			if list.status != http.StatusOK || !strings.Contains(list.body, `"whoami"`) {
				t.Errorf("tools/list without token: status %d, body %q; want 200 listing the tools", list.status, list.body)
			}

			const call = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami","arguments":{}}}`
			denied := mcpSend(t, http.MethodPost, srv.URL, "", h, call)
			if denied.status != http.StatusUnauthorized || !strings.HasPrefix(denied.challenge, "Bearer ") ||
				!strings.Contains(denied.challenge, fmt.Sprintf("resource_metadata=%q", srv.ResourceMetadataURL)) {
				t.Errorf("tools/call without token: status %d, challenge %q; want 401 with a Bearer challenge naming %s",
					denied.status, denied.challenge, srv.ResourceMetadataURL)
			}
			tok := issueMCPToken(t, as, srv.Resource, "mcp:read")
			ok := mcpSend(t, http.MethodPost, srv.URL, tok.AccessToken, h, call)
			if ok.status != http.StatusOK || !strings.Contains(ok.body, `\"subject\":\"alice\"`) {
				t.Errorf("tools/call with token: status %d, body %q; want 200 naming alice", ok.status, ok.body)
			}
			// A token sent where none is needed is still checked.
			bad := mcpSend(t, http.MethodPost, srv.URL, "not-a-token", h, `{"jsonrpc":"2.0","id":4,"method":"tools/list"}`)
			if bad.status != http.StatusUnauthorized {
				t.Errorf("tools/list with a bad token: status %d, want 401", bad.status)
			}
			if st := srv.Stats(t); st.Unauthorized != 2 || st.Forbidden != 0 {
				t.Errorf("stats = %+v, want 2 unauthorized, 0 forbidden", st)
			}
		})
	}
}

func TestMCPServerStepUpChallengeNamesGrantedScopesToo(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{})
	for _, impl := range mcpImpls {
		t.Run(impl.name, func(t *testing.T) {
			srv := impl.start(t, MCPServerOptions{Issuer: as.Issuer, RequiredScopes: []string{"mcp:read"}, ToolCallScopes: []string{"mcp:write"}})
			if got := mcpResourceMetadata(t, srv.ResourceMetadataURL).ScopesSupported; !cmp.Equal(got, []string{"mcp:read", "mcp:write"}) {
				t.Errorf("scopes_supported = %q, want mcp:read mcp:write", got)
			}
			narrow := issueMCPToken(t, as, srv.Resource, "mcp:read")
			init := mcpInitialize(t, srv.URL, narrow.AccessToken)
			if init.status != http.StatusOK {
				t.Fatalf("initialize with mcp:read: status %d, want 200", init.status)
			}
			h := http.Header{"Mcp-Session-Id": {init.session}, "Mcp-Protocol-Version": {"2025-06-18"}}
			if r := mcpSend(t, http.MethodPost, srv.URL, narrow.AccessToken, h, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); r.status != http.StatusAccepted {
				t.Fatalf("initialized: status %d, want 202", r.status)
			}
			if r := mcpSend(t, http.MethodPost, srv.URL, narrow.AccessToken, h, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); r.status != http.StatusOK {
				t.Errorf("tools/list with mcp:read: status %d, want 200", r.status)
			}
			const call = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"up"}}}`
			up := mcpSend(t, http.MethodPost, srv.URL, narrow.AccessToken, h, call)
			if up.status != http.StatusForbidden || !strings.Contains(up.challenge, `scope="mcp:read mcp:write"`) {
				t.Fatalf("tools/call with mcp:read: status %d, challenge %q; want 403 naming mcp:read mcp:write", up.status, up.challenge)
			}
			// The challenge repeats a granted scope: a client that appends it to what it holds asks
			// for mcp:read twice, which RequestedScopes shows in the authorization URL it opens.
			granted, _ := narrow.Extra("scope").(string)
			naive := granted + " " + mcpChallengeParam(up.challenge, "scope")
			if got := RequestedScopes("http://127.0.0.1:9/auth?scope=" + strings.ReplaceAll(naive, " ", "+")); !cmp.Equal(got, []string{"mcp:read", "mcp:read", "mcp:write"}) {
				t.Errorf("RequestedScopes of a naive step-up = %q", got)
			}

			wide := issueMCPToken(t, as, srv.Resource, "mcp:read mcp:write")
			if r := mcpSend(t, http.MethodPost, srv.URL, wide.AccessToken, h, call); r.status != http.StatusOK || !strings.Contains(r.body, `"up"`) {
				t.Errorf("tools/call with mcp:write, same session: status %d, body %q; want 200", r.status, r.body)
			}
			if st := srv.Stats(t); st.Forbidden != 1 || st.Unauthorized != 0 {
				t.Errorf("stats = %+v, want 1 forbidden, 0 unauthorized", st)
			}
		})
	}
}

func TestRequestedScopesKeepsOrderAndRepeats(t *testing.T) {
	for _, c := range []struct {
		url  string
		want []string
	}{
		{"http://127.0.0.1:1/auth?scope=mcp%3Abasic+mcp%3Abasic+mcp%3Awrite&state=x", []string{"mcp:basic", "mcp:basic", "mcp:write"}},
		{"http://127.0.0.1:1/auth?scope=a%20b", []string{"a", "b"}},
		{"http://127.0.0.1:1/auth?state=x", nil},
		{"://bad", nil},
	} {
		if got := RequestedScopes(c.url); !cmp.Equal(got, c.want) {
			t.Errorf("RequestedScopes(%q) = %q, want %q", c.url, got, c.want)
		}
	}
}

func TestLegacyMCPServerFindsItsAuthorizationServerAtItsOrigin(t *testing.T) {
	for _, c := range []struct {
		name   string
		mode   LegacyAuth
		opaque bool
	}{
		{"metadata", LegacyASMetadata, false},
		{"default endpoints", LegacyDefaultEndpoints, false},
		{"default endpoints, opaque tokens", LegacyDefaultEndpoints, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := GoMCPServer(t, MCPServerOptions{Legacy: c.mode, LegacyAS: AuthServerOptions{Opaque: c.opaque}})
			origin := strings.TrimSuffix(srv.URL, "/mcp")
			if srv.AuthServer == nil || srv.AuthServer.Issuer != origin || srv.ResourceMetadataURL != "" {
				t.Fatalf("AuthServer %v, ResourceMetadataURL %q; want an AS whose issuer is %s and no metadata URL", srv.AuthServer, srv.ResourceMetadataURL, origin)
			}
			for _, p := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
				if code := mcpGetStatus(t, origin+p); code != http.StatusNotFound {
					t.Errorf("GET %s: status %d, want 404", p, code)
				}
			}
			if r := mcpInitialize(t, srv.URL, ""); r.status != http.StatusUnauthorized || r.challenge != "Bearer" {
				t.Errorf("no token: status %d, challenge %q; want 401 and a bare Bearer challenge", r.status, r.challenge)
			}

			var ep asEndpoints
			switch c.mode {
			case LegacyASMetadata:
				for _, p := range []string{"/authorize", "/register"} {
					if code := mcpGetStatus(t, origin+p); code != http.StatusNotFound {
						t.Errorf("GET %s: status %d, want 404 (the metadata names other endpoints)", p, code)
					}
				}
				var meta struct {
					Issuer                string `json:"issuer"`
					AuthorizationEndpoint string `json:"authorization_endpoint"`
					TokenEndpoint         string `json:"token_endpoint"`
					RegistrationEndpoint  string `json:"registration_endpoint"`
				}
				mcpGetJSON(t, origin+"/.well-known/oauth-authorization-server", &meta)
				ep = asEndpoints{meta.RegistrationEndpoint, meta.AuthorizationEndpoint, meta.TokenEndpoint}
				if meta.Issuer != origin {
					t.Errorf("metadata issuer %q, want the MCP origin %s", meta.Issuer, origin)
				}
				for _, e := range []string{ep.registration, ep.authorization, ep.token} {
					if !strings.HasPrefix(e, origin+"/") {
						t.Errorf("metadata endpoint %q is not on the MCP origin", e)
					}
				}
			case LegacyDefaultEndpoints:
				for _, p := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
					if code := mcpGetStatus(t, origin+p); code != http.StatusNotFound {
						t.Errorf("GET %s: status %d, want 404", p, code)
					}
				}
				ep = asEndpoints{origin + "/register", origin + "/authorize", origin + "/token"}
			}

			tok := issueMCPTokenAt(t, ep, srv.URL, "mcp:read")
			if !c.opaque {
				if iss := mcpJWTClaim(t, tok.AccessToken, "iss"); iss != origin {
					t.Errorf("token iss %q, want the MCP origin %s", iss, origin)
				}
			}
			cs := mcpConnect(t, srv.URL, tok.AccessToken, nil)
			var who Whoami
			if err := json.Unmarshal([]byte(mcpCall(t, cs, "whoami", map[string]any{})), &who); err != nil {
				t.Fatalf("whoami: %v", err)
			}
			if who.Subject != "alice" || who.ClientID != tok.clientID {
				t.Errorf("whoami = %+v, want alice through client %s", who, tok.clientID)
			}
		})
	}
}

// mcpPRM is the part of RFC 9728 metadata the tests compare.
type mcpPRM struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers"`
	ScopesSupported      []string `json:"scopes_supported,omitempty"`
}

// mcpResourceMetadata fetches protected-resource metadata as is, without the SDK client's checks.
func mcpResourceMetadata(t *testing.T, metadataURL string) mcpPRM {
	t.Helper()
	var m mcpPRM
	mcpGetJSON(t, metadataURL, &m)
	return m
}

// mcpGetJSON fetches a 200 JSON document into out.
func mcpGetJSON(t *testing.T, u string, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", u, resp.Status, err)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// mcpGetStatus returns the status of a GET of u.
func mcpGetStatus(t *testing.T, u string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// mcpChallengeParam returns a quoted parameter of a WWW-Authenticate challenge.
func mcpChallengeParam(challenge, name string) string {
	_, rest, ok := strings.Cut(challenge, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// mcpJWTClaim returns a string claim of a JWT's payload, unverified (the server verifies).
func mcpJWTClaim(t *testing.T, token, claim string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	s, _ := claims[claim].(string)
	return s
}

// The Go SDK's client-side discovery, which the Go server used to borrow, refuses Entra's metadata
// (no code_challenge_methods_supported); a resource server's must not.
func TestMCPServerDiscoversProviderProfilesAndAdvertisesTheirIssuer(t *testing.T) {
	for _, p := range []Profile{ProfileEntra, ProfileAtlassian, ProfileSlack, ProfileGitHub, ProfileAuth0} {
		as := NewAuthServer(t, AuthServerOptions{Profile: p})
		for _, impl := range mcpImpls {
			t.Run(string(p)+"/"+impl.name, func(t *testing.T) {
				opts := MCPServerOptions{Issuer: as.Issuer, AdvertiseAS: as.AdvertisedIssuer, OriginResource: p == ProfileSlack}
				if p == ProfileGitHub {
					opts.Opaque = true
					opts.IntrospectionClientID, opts.IntrospectionClientSecret = as.IntrospectionClient()
				}
				srv := impl.start(t, opts)
				if got := mcpResourceMetadata(t, srv.ResourceMetadataURL).AuthorizationServers; !cmp.Equal(got, []string{as.AdvertisedIssuer}) {
					t.Errorf("authorization_servers = %q, want %q", got, as.AdvertisedIssuer)
				}
				if p != ProfileAtlassian {
					return // no open DCR or no RFC 8707 resource: the profiles' own tests get their tokens
				}
				tok := issueMCPToken(t, as, srv.Resource, "mcp:read")
				if r := mcpInitialize(t, srv.URL, tok.AccessToken); r.status != http.StatusOK {
					t.Errorf("initialize with the profile's token: status %d, want 200", r.status)
				}
			})
		}
	}
}
