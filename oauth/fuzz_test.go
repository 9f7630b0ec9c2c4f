package oauth

import (
	"strings"
	"testing"
)

func FuzzParseWWWAuthenticate(f *testing.F) {
	for _, s := range []string{
		`Bearer resource_metadata="https://x/.well-known/oauth-protected-resource", scope="a b"`,
		`Bearer error="insufficient_scope", error_description="need "admin"", scope="admin"`,
		`Basic realm="x", Bearer`, `Negotiate abc==`, `Bearer realm="a" scope="b"`, `"`, `,=,`, `Bearer x="\`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		for _, c := range ParseWWWAuthenticate([]string{h}) {
			if c.Scheme == "" || c.Scheme != strings.ToLower(c.Scheme) || c.Params == nil {
				t.Fatalf("bad challenge %+v from %q", c, h)
			}
		}
	})
}

func FuzzDecodeASMetadata(f *testing.F) {
	for _, s := range []string{
		`{"issuer":"https://as.example","authorization_endpoint":"https://as.example/a","token_endpoint":"https://as.example/t","code_challenge_methods_supported":["S256"]}`,
		`{"issuer":"http://127.0.0.1:8080","authorization_endpoint":"http://127.0.0.1:8080/a","token_endpoint":"http://evil.example/t","code_challenge_methods_supported":["S256"]}`,
		`{"issuer":1}`, `{`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	// One insecure optional endpoint per seed, so that dropping any one from the validation fails here.
	for _, field := range []string{"registration_endpoint", "revocation_endpoint", "device_authorization_endpoint"} {
		f.Add([]byte(`{"issuer":"https://as.example","authorization_endpoint":"https://as.example/a","token_endpoint":"https://as.example/t","` +
			field + `":"http://evil.example/x"}`))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeASMetadata(data)
		if err != nil {
			return
		}
		// Every URL the package may send a credential to passed checkURL; the optional ones may be absent.
		for _, u := range []string{m.Issuer, m.AuthorizationEndpoint, m.TokenEndpoint} {
			if checkURL(u) != nil {
				t.Fatalf("accepted insecure or empty endpoint %q", u)
			}
		}
		for _, u := range []string{m.RegistrationEndpoint, m.RevocationEndpoint, m.DeviceAuthorizationEndpoint} {
			if u != "" && checkURL(u) != nil {
				t.Fatalf("accepted insecure optional endpoint %q", u)
			}
		}
	})
}

func FuzzDecodePRM(f *testing.F) {
	for _, s := range []string{
		`{"resource":"https://mcp.example/mcp","authorization_servers":["https://as.example"]}`,
		`{"resource":"https://mcp.example/mcp","authorization_servers":["http://as.example"]}`,
		`{"resource":""}`, `{"resource":"javascript:alert(1)"}`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodePRM(data)
		if err != nil {
			return
		}
		if checkURL(m.Resource) != nil {
			t.Fatalf("accepted resource %q", m.Resource)
		}
		for _, as := range m.AuthorizationServers {
			if checkURL(as) != nil {
				t.Fatalf("accepted authorization server %q", as)
			}
		}
	})
}
