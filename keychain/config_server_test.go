package keychain

import (
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/google/go-cmp/cmp"
)

func TestConfigFileKeepsPerServerSignInSettingsAndTheMetadataURL(t *testing.T) {
	c, err := NewConfigFile(testbed.TempDir(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultSettings()
	want.Servers = []Server{
		{Name: "entra", URL: "https://mcp.example/mcp", ClientID: "app", AssumePKCE: true,
			Scopes: []string{"api://app/.default", "offline_access"}},
		{Name: "auth0", URL: "https://mcp.example/auth0", Params: map[string]string{"audience": "https://api.example"}},
		{Name: "robot", URL: "https://mcp.example/robot", ClientID: "svc", GrantType: GrantClientCredentials},
		{Name: "xaa", URL: "https://mcp.example/xaa", ClientID: "mcp-client", GrantType: GrantCrossAppAccess,
			IdPTokenEndpoint: "https://idp.example/oauth2/token", IdPClientID: "idp-client"},
	}
	want.Prefs.ClientMetadataURL = "https://example.com/authkeeper/client-metadata.json"
	if err := c.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := c.Load()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-saved +loaded):\n%s", diff)
	}
}

func TestSettingsValidateRejectsBadSignInSettings(t *testing.T) {
	base := func() Settings {
		s := DefaultSettings()
		s.Servers = []Server{{Name: "x", URL: "https://x.example/mcp"}}
		return s
	}
	for _, tt := range []struct {
		name   string
		change func(*Settings)
		want   string // in the error
	}{
		{"scope with a space", func(s *Settings) { s.Servers[0].Scopes = []string{"a b"} }, "scope"},
		{"empty scope", func(s *Settings) { s.Servers[0].Scopes = []string{""} }, "scope"},
		{"reserved parameter", func(s *Settings) { s.Servers[0].Params = map[string]string{"redirect_uri": "https://evil"} }, "set by authkeeper"},
		{"reserved parameter in capitals", func(s *Settings) { s.Servers[0].Params = map[string]string{"Code_Challenge": "x"} }, "set by authkeeper"},
		{"scope as a parameter", func(s *Settings) { s.Servers[0].Params = map[string]string{"scope": "x"} }, "set by authkeeper"},
		{"parameter name with =", func(s *Settings) { s.Servers[0].Params = map[string]string{"a=b": "x"} }, "not valid"},
		{"parameter value with a newline", func(s *Settings) { s.Servers[0].Params = map[string]string{"audience": "a\nb"} }, "control character"},
		{"unknown grant type", func(s *Settings) { s.Servers[0].GrantType = "password" }, "grant type"},
		{"client credentials without a client id", func(s *Settings) { s.Servers[0].GrantType = GrantClientCredentials }, "client id"},
		{"cross-app access without an IdP client id", func(s *Settings) {
			s.Servers[0].GrantType, s.Servers[0].ClientID, s.Servers[0].IdPTokenEndpoint = GrantCrossAppAccess, "c", "https://idp.example/token"
		}, "identity provider"},
		{"cross-app access without a client id", func(s *Settings) {
			s.Servers[0].GrantType, s.Servers[0].IdPClientID, s.Servers[0].IdPTokenEndpoint = GrantCrossAppAccess, "i", "https://idp.example/token"
		}, "client id"},
		{"cross-app access with a relative IdP token endpoint", func(s *Settings) {
			s.Servers[0].GrantType, s.Servers[0].ClientID, s.Servers[0].IdPClientID = GrantCrossAppAccess, "c", "i"
			s.Servers[0].IdPTokenEndpoint = "/token"
		}, "not an absolute"},
		{"an IdP with another grant", func(s *Settings) { s.Servers[0].IdPClientID = "i" }, "only with the cross_app_access grant"},
		{"http metadata URL", func(s *Settings) { s.Prefs.ClientMetadataURL = "http://example.com/cimd.json" }, "https"},
		{"metadata URL without a path", func(s *Settings) { s.Prefs.ClientMetadataURL = "https://example.com" }, "path"},
		{"metadata URL with a fragment", func(s *Settings) { s.Prefs.ClientMetadataURL = "https://example.com/c.json#x" }, "fragment"},
		{"metadata URL with a query", func(s *Settings) { s.Prefs.ClientMetadataURL = "https://example.com/c.json?v=1" }, "query"},
		{"metadata URL with a dot-dot segment", func(s *Settings) { s.Prefs.ClientMetadataURL = "https://example.com/a/../c.json" }, "segments"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := base()
			tt.change(&s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error about %q", err, tt.want)
			}
		})
	}
	ok := base()
	ok.Servers[0].Params = map[string]string{"audience": "https://api.example", "prompt": "consent"}
	ok.Servers[0].Scopes = []string{"api://app/.default", "offline_access"}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid settings refused: %v", err)
	}
}

// TestClientMetadataURLMustBeAnHTTPSPathWithoutQueryFragmentOrDotSegments pins the Client ID Metadata
// Document URL rules (draft-ietf-oauth-client-id-metadata-document §3): the URL is the client id, and
// an AS compares it as a string.
func TestClientMetadataURLMustBeAnHTTPSPathWithoutQueryFragmentOrDotSegments(t *testing.T) {
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"https://example.com/authkeeper/client-metadata.json", true},
		{"https://example.com:8443/c.json", true},
		{"https://example.com/a.b/..c/c.json", true}, // dots inside a segment are no dot segments
		{"http://example.com/c.json", false},
		{"https://example.com", false},
		{"https://example.com/", false},
		{"https://example.com/c.json#x", false},
		{"https://example.com/c.json#", false},
		{"https://example.com/c.json?v=1", false},
		{"https://example.com/c.json?", false},
		{"https://example.com/./c.json", false},
		{"https://example.com/a/../c.json", false},
		{"https://example.com/a/..", false},
		{"https://example.com/a/%2e%2e/c.json", false},
		{"https://example.com/a/%2E/c.json", false},
		{"https://user@example.com/c.json", false},
		{"/c.json", false},
	} {
		t.Run(tt.url, func(t *testing.T) {
			if err := ValidClientMetadataURL(tt.url); (err == nil) != tt.ok {
				t.Errorf("ValidClientMetadataURL(%q) = %v, want ok=%t", tt.url, err, tt.ok)
			}
		})
	}
}
