package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

func TestProbeFindsOAuthSignIn(t *testing.T) {
	for _, ts := range []bool{false, true} {
		t.Run(map[bool]string{false: "GoSDK", true: "TSSDK"}[ts], func(t *testing.T) {
			b := newBench(t, benchOptions{ts: ts})
			p := b.probe(t)
			if p.Resource != b.mcp.URL || p.AuthServer.Issuer != b.as.Issuer || p.Registration != RegistrationDynamic {
				t.Errorf("probe = %+v", p)
			}
			if want := []string{"mcp:read", "offline_access"}; !slices.Equal(p.Scopes, want) {
				t.Errorf("scopes = %q, want %q", p.Scopes, want)
			}
			if !strings.Contains(p.Reason, b.as.Issuer) {
				t.Errorf("reason %q does not name the issuer", p.Reason)
			}
		})
	}
}

// TestProbeIssuerWithPath signs in through an AS mounted under /tenant1, whose metadata is found in
// the spec's order for issuers with a path.
func TestProbeIssuerWithPath(t *testing.T) {
	b := newBench(t, benchOptions{as: testbed.AuthServerOptions{IssuerPath: "/tenant1"}})
	tok, g := b.signIn(t, SignInOptions{})
	requireAccepted(t, b.mcp.URL, tok)
	if g.Issuer != b.as.Issuer || !strings.HasSuffix(g.Issuer, "/tenant1") {
		t.Errorf("issuer = %q", g.Issuer)
	}
}

func TestASMetadataURLOrder(t *testing.T) {
	for issuer, want := range map[string][]string{
		"https://as.example": {"https://as.example/.well-known/oauth-authorization-server", "https://as.example/.well-known/openid-configuration"},
		"https://as.example/t1": {"https://as.example/.well-known/oauth-authorization-server/t1",
			"https://as.example/.well-known/openid-configuration/t1", "https://as.example/t1/.well-known/openid-configuration"},
	} {
		if got, _ := asMetadataURLs(issuer); !slices.Equal(got, want) {
			t.Errorf("asMetadataURLs(%q) = %q, want %q", issuer, got, want)
		}
	}
}

func TestProbeFallsBackToOpenIDDiscovery(t *testing.T) {
	b := newBench(t, benchOptions{})
	b.as.Fault(t, testbed.Fault{Endpoint: "oauth-authorization-server", Status: 404})
	b.probe(t)
	if n := b.as.Stats(t).Requests["openid-configuration"]; n != 1 {
		t.Errorf("openid-configuration fetched %d times, want 1", n)
	}
}

// TestProbeRejectsBadAuthServerMetadata serves bad documents through the real AS's fault hook. (An
// issuer mismatch and a missing S256 are tolerated: see TestProbeToleratesProviderDeviations.)
func TestProbeRejectsBadAuthServerMetadata(t *testing.T) {
	b := newBench(t, benchOptions{})
	good := fetchJSON(t, b.as.Issuer+"/.well-known/oauth-authorization-server")
	edit := func(f func(m map[string]any)) string {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		f(m)
		out, _ := json.Marshal(m)
		return string(out)
	}
	for _, c := range []struct {
		name  string
		fault testbed.Fault
		want  error
		class Class
	}{
		{"Malformed", testbed.Fault{Status: 200, Body: "{not json"}, nil, ClassMisconfigured},
		{"IssuerTemplateOfAnotherHost", testbed.Fault{Status: 200, Body: edit(func(m map[string]any) { m["issuer"] = "https://login.example/{tenantid}/v2.0" })}, ErrIssuerMismatch, ClassMisconfigured},
		{"PlainHTTPTokenEndpoint", testbed.Fault{Status: 200, Body: edit(func(m map[string]any) { m["token_endpoint"] = "http://as.example.com/token" })}, ErrInsecureURL, ClassMisconfigured},
		{"ServerError", testbed.Fault{Status: 500}, nil, ClassTransient},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.fault.Endpoint = "oauth-authorization-server"
			b.as.Fault(t, c.fault)
			_, err := b.client.Probe(t.Context(), b.mcp.URL)
			var oe *Error
			if !errors.As(err, &oe) || oe.Class != c.class || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("Probe = %v, want class %v (%v)", err, c.class, c.want)
			}
		})
	}
	t.Run("Down", func(t *testing.T) {
		b.as.Stop(t)
		defer b.as.Start(t)
		if _, err := b.client.Probe(t.Context(), b.mcp.URL); !errors.Is(err, ErrTransient) {
			t.Fatalf("Probe with the AS down = %v, want transient", err)
		}
	})
}

func fetchJSON(t *testing.T, u string) map[string]any {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m := map[string]any{}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// sdkServer serves a real Go SDK MCP handler on loopback, wrapped by wrap; prm, when set, is served at
// path (the well-known URL). It returns the MCP endpoint URL.
func sdkServer(t *testing.T, wrap func(http.Handler, string) http.Handler, prmPath string, prm func(base string) *oauthex.ProtectedResourceMetadata) string {
	t.Helper()
	server := mcp.NewServer(&mcp.Implementation{Name: "probe-test", Version: "1"}, nil)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{JSONResponse: true})
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.Handle("/mcp", wrap(h, srv.URL))
	if prm != nil {
		mux.Handle(prmPath, auth.ProtectedResourceMetadataHandler(prm(srv.URL)))
	}
	return srv.URL + "/mcp"
}

func noWrap(h http.Handler, _ string) http.Handler { return h }

func TestProbeVerdicts(t *testing.T) {
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{})
	client, _ := New(Config{})
	reject := func(_ context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		return nil, auth.ErrInvalidToken
	}
	// bearer protects with the SDK's middleware; header names the metadata URL in the challenge.
	bearer := func(header string) func(http.Handler, string) http.Handler {
		return func(h http.Handler, base string) http.Handler {
			opts := &auth.RequireBearerTokenOptions{}
			if header != "" {
				opts.ResourceMetadataURL = base + header
			}
			return auth.RequireBearerToken(reject, opts)(h)
		}
	}
	apiKey := func(h http.Handler, _ string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `ApiKey realm="probe"`)
			http.Error(w, "api key required", http.StatusUnauthorized)
		})
	}
	unescaped := func(h http.Handler, base string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// A real server's sloppy header: an unescaped quote inside a quoted value.
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="the "token" is missing", resource_metadata="`+base+`/.well-known/oauth-protected-resource/mcp"`)
			w.WriteHeader(http.StatusUnauthorized)
		})
	}
	prmFor := func(resource func(base string) string, servers ...string) func(string) *oauthex.ProtectedResourceMetadata {
		return func(base string) *oauthex.ProtectedResourceMetadata {
			return &oauthex.ProtectedResourceMetadata{Resource: resource(base), AuthorizationServers: servers, ScopesSupported: []string{"mcp:read"}}
		}
	}
	self := func(base string) string { return base + "/mcp" }
	for _, c := range []struct {
		name    string
		wrap    func(http.Handler, string) http.Handler
		prmPath string
		prm     func(string) *oauthex.ProtectedResourceMetadata
		want    Requirement
		err     error
	}{
		{"NoAuth", noWrap, "", nil, NoAuth, nil},
		{"APIKey", apiKey, "", nil, StaticToken, nil},
		{"BearerWithoutMetadata", bearer(""), "", nil, StaticToken, nil},
		{"MetadataFromHeader", bearer("/prm"), "/prm", prmFor(self, as.Issuer), OAuthSignIn, nil},
		{"MetadataPathInserted", bearer(""), "/.well-known/oauth-protected-resource/mcp", prmFor(self, as.Issuer), OAuthSignIn, nil},
		{"MetadataAtRoot", bearer(""), "/.well-known/oauth-protected-resource", prmFor(func(b string) string { return b + "/" }, as.Issuer), OAuthSignIn, nil},
		{"UnescapedQuotesInChallenge", unescaped, "/.well-known/oauth-protected-resource/mcp", prmFor(self, as.Issuer), OAuthSignIn, nil},
		{"ResourceMismatch", bearer("/prm"), "/prm", prmFor(func(string) string { return "https://other.example/mcp" }, as.Issuer), 0, ErrResourceMismatch},
		{"PlainHTTPNonLoopbackAS", bearer("/prm"), "/prm", prmFor(self, "http://as.example.com"), 0, ErrInsecureURL},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := sdkServer(t, c.wrap, c.prmPath, c.prm)
			p, err := client.Probe(t.Context(), u)
			if c.err != nil {
				if !errors.Is(err, c.err) || !errors.Is(err, ErrMisconfigured) {
					t.Fatalf("Probe = %v, want %v (misconfigured)", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if p.Requirement != c.want || p.Reason == "" {
				t.Fatalf("Probe = %v (%q), want %v", p.Requirement, p.Reason, c.want)
			}
			if c.want == OAuthSignIn && (p.AuthServer.Issuer != as.Issuer || !slices.Contains(p.Scopes, "mcp:read")) {
				t.Errorf("probe = %+v", p)
			}
		})
	}
}

// TestProbeRejectsOversizedMetadata: a document over the 1 MiB limit is refused, not truncated. (The
// AS's fault hook caps bodies at 100 KB, so a tiny server serves the bytes.)
func TestProbeRejectsOversizedMetadata(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+srv.URL+`/prm"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	mux.HandleFunc("/prm", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"resource":"`+srv.URL+`/mcp","resource_name":"`+strings.Repeat("x", maxBody)+`"}`)
	})
	client, _ := New(Config{})
	if _, err := client.Probe(t.Context(), srv.URL+"/mcp"); !errors.Is(err, errTooLarge) || !errors.Is(err, ErrMisconfigured) {
		t.Fatalf("Probe = %v, want a too-large misconfiguration", err)
	}
}

func TestProbeRefusesPlainHTTPServerOffLoopback(t *testing.T) {
	client, _ := New(Config{})
	if _, err := client.Probe(t.Context(), "http://mcp.example.com/mcp"); !errors.Is(err, ErrInsecureURL) {
		t.Fatalf("Probe = %v, want ErrInsecureURL", err)
	}
}

// TestProbeToleratesProviderDeviations: metadata naming another issuer (Atlassian, Slack) and metadata
// without code_challenge_methods_supported (Entra) no longer fail the probe; they are recorded. The
// mix-up protection stays: this AS's callbacks carry its real `iss`, which is not the one its tampered
// metadata names, so the sign-in is refused.
func TestProbeToleratesProviderDeviations(t *testing.T) {
	b := newBench(t, benchOptions{})
	good := fetchJSON(t, b.as.Issuer+"/.well-known/oauth-authorization-server")
	serveEdited := func(f func(m map[string]any)) {
		m := map[string]any{}
		for k, v := range good {
			m[k] = v
		}
		f(m)
		out, _ := json.Marshal(m)
		b.as.Fault(t, testbed.Fault{Endpoint: "oauth-authorization-server", Status: 200, Body: string(out), Count: -1})
		t.Cleanup(func() { b.as.ClearFaults(t) })
	}
	t.Run("ForeignIssuer", func(t *testing.T) {
		// Another program on this machine (another port) is another operator: its issuer is refused.
		serveEdited(func(m map[string]any) { m["issuer"] = "http://127.0.0.1:1/other" })
		if p, err := b.client.Probe(t.Context(), b.mcp.URL); !errors.Is(err, ErrForeignIssuer) {
			t.Fatalf("Probe = %+v, %v; want ErrForeignIssuer", p, err)
		}
		b.as.ClearFaults(t)
	})
	t.Run("IssuerMismatch", func(t *testing.T) {
		other := b.as.Issuer + "/other" // the same operator (origin), another issuer
		serveEdited(func(m map[string]any) { m["issuer"] = other })
		p := b.probe(t)
		if p.AuthServer.Issuer != other || p.AdvertisedIssuer != b.as.Issuer || !slices.Contains(p.Quirks, QuirkIssuerMismatch) {
			t.Fatalf("probe issuer %q advertised %q quirks %q", p.AuthServer.Issuer, p.AdvertisedIssuer, p.Quirks)
		}
		if _, _, err := b.client.SignIn(t.Context(), p, SignInOptions{}); !errors.Is(err, ErrIssuerMismatch) {
			t.Errorf("SignIn = %v, want ErrIssuerMismatch from the callback's iss", err)
		}
		b.as.ClearFaults(t)
	})
	t.Run("NoS256", func(t *testing.T) {
		serveEdited(func(m map[string]any) { delete(m, "code_challenge_methods_supported") })
		p := b.probe(t)
		if p.PKCE != PKCEMissing || !strings.Contains(p.Reason, "--assume-pkce") {
			t.Fatalf("probe PKCE %q reason %q", p.PKCE, p.Reason)
		}
		tok, g, err := b.client.SignIn(t.Context(), p, SignInOptions{AssumePKCE: true})
		if err != nil {
			t.Fatalf("SignIn with AssumePKCE: %v", err)
		}
		requireAccepted(t, b.mcp.URL, tok)
		if !g.HasQuirk(QuirkPKCEAssumed) || queryOf(t, b.browser.Opened()[len(b.browser.Opened())-1]).Get("code_challenge_method") != "S256" {
			t.Errorf("grant quirks %q; S256 must still be sent", g.Quirks)
		}
		b.as.ClearFaults(t)
	})
}

// TestProbeRefusesMetadataFromAnotherOrigin: metadata reached through a redirect to another origin than
// the one it was asked of is refused, even though issuer mismatches are otherwise tolerated. (The
// redirector is a tiny server: no real AS redirects its metadata away.)
func TestProbeRefusesMetadataFromAnotherOrigin(t *testing.T) {
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{})
	redirector := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, as.Issuer+r.URL.Path, http.StatusFound)
	})
	mcpServer := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: as.Issuer, AdvertiseAS: redirector.URL, RequiredScopes: []string{"mcp:read"}})
	client, _ := New(Config{})
	_, err := client.Probe(t.Context(), mcpServer.URL)
	if !errors.Is(err, ErrIssuerMismatch) || !errors.Is(err, ErrMisconfigured) || !strings.Contains(err.Error(), "another origin") {
		t.Fatalf("Probe = %v, want a misconfigured issuer mismatch naming the other origin", err)
	}
}
