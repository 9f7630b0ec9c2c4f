package oauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseWWWAuthenticateIsLenient(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []Challenge
	}{
		{`Bearer resource_metadata="https://x/prm", scope="a b"`,
			[]Challenge{{"bearer", map[string]string{"resource_metadata": "https://x/prm", "scope": "a b"}}}},
		{`Bearer error="invalid_token", error_description="the "token" is bad", resource_metadata="https://x/prm"`,
			[]Challenge{{"bearer", map[string]string{"error": "invalid_token", "error_description": `the "token" is bad`, "resource_metadata": "https://x/prm"}}}},
		{`Bearer realm="a" scope="b"`, // missing comma
			[]Challenge{{"bearer", map[string]string{"realm": "a", "scope": "b"}}}},
		{`Basic realm="x", Bearer scope=read`,
			[]Challenge{{"basic", map[string]string{"realm": "x"}}, {"bearer", map[string]string{"scope": "read"}}}},
		{`Negotiate abc123, Bearer`,
			[]Challenge{{"negotiate", map[string]string{"": "abc123"}}, {"bearer", map[string]string{}}}},
		{`Bearer error="unterminated`, []Challenge{{"bearer", map[string]string{"error": "unterminated"}}}},
		{`BEARER Scope="x\"y"`, []Challenge{{"bearer", map[string]string{"scope": `x"y`}}}},
		{`=,,"`, nil},
	} {
		got := ParseWWWAuthenticate([]string{c.in})
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("ParseWWWAuthenticate(%q) (-want +got):\n%s", c.in, diff)
		}
	}
}

func TestClassifyUsesErrorFieldAndStatus(t *testing.T) {
	for _, c := range []struct {
		code   string
		status int
		want   Class
	}{
		{"invalid_grant", 400, ClassReauth}, {"interaction_required", 400, ClassReauth},
		{"login_required", 400, ClassReauth}, {"consent_required", 400, ClassReauth},
		{"invalid_client", 401, ClassClientInvalid}, {"unauthorized_client", 400, ClassClientInvalid},
		{"", 401, ClassClientInvalid},
		{"temporarily_unavailable", 503, ClassTransient}, {"", 500, ClassTransient}, {"", 429, ClassTransient},
		{"", 0, ClassTransient},
		{"invalid_scope", 400, ClassMisconfigured}, {"invalid_target", 400, ClassMisconfigured},
		{"invalid_request", 400, ClassMisconfigured}, {"whatever", 400, ClassMisconfigured},
	} {
		if got := Classify(c.code, c.status); got != c.want {
			t.Errorf("Classify(%q, %d) = %v, want %v", c.code, c.status, got, c.want)
		}
	}
}

func jwtWith(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(claims)) + ".sig"
}

// TestTokenExpiryRules pins the expiry of a token answer: expires_in, else the JWT's exp, else the
// default lifetime when the token can be renewed silently (a refresh token, client credentials) or is
// a JWT, else zero — "no expiry" (GitHub OAuth apps).
func TestTokenExpiryRules(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	exp := now.Add(42 * time.Minute)
	def := now.Add(10 * time.Minute)
	for _, c := range []struct {
		name      string
		resp      string
		renewable bool
		want      time.Time
	}{
		{"ExpiresIn", `{"access_token":"opaque","expires_in":3600}`, false, now.Add(time.Hour)},
		{"ExpiresInString", `{"access_token":"opaque","expires_in":"60"}`, false, now.Add(time.Minute)},
		{"JWTExp", fmt.Sprintf(`{"access_token":%q}`, jwtWith(fmt.Sprintf(`{"exp":%d}`, exp.Unix()))), false, exp},
		{"JWTWithoutExp", fmt.Sprintf(`{"access_token":%q}`, jwtWith(`{"sub":"x"}`)), false, def},
		{"OpaqueWithRefreshToken", `{"access_token":"opaque","refresh_token":"r"}`, false, def},
		{"OpaqueRenewable", `{"access_token":"opaque"}`, true, def},
		{"OpaqueNothingElseMeansNoExpiry", `{"access_token":"opaque"}`, false, time.Time{}},
		{"ZeroExpiresIn", `{"access_token":"opaque","expires_in":0}`, true, def},
		// Past ~9.2e9 s a time.Duration overflows and the expiry would land in the past: capped at a year.
		{"HugeExpiresIn", `{"access_token":"opaque","expires_in":9300000000}`, false, now.Add(maxExpiresIn * time.Second)},
		{"HugeExpiresInFloat", `{"access_token":"opaque","expires_in":9.3e11}`, false, now.Add(maxExpiresIn * time.Second)},
		{"HugeExpiresInString", `{"access_token":"opaque","expires_in":"99999999999999"}`, false, now.Add(maxExpiresIn * time.Second)},
		{"HugeExpiresInOverInt64", `{"access_token":"opaque","expires_in":1e30}`, false, now.Add(maxExpiresIn * time.Second)},
	} {
		t.Run(c.name, func(t *testing.T) {
			var tr tokenResponse
			if err := json.Unmarshal([]byte(c.resp), &tr); err != nil {
				t.Fatal(err)
			}
			got := tr.token(now, nil, 10*time.Minute, c.renewable)
			if !got.Expiry.Equal(c.want) {
				t.Errorf("expiry = %v, want %v", got.Expiry, c.want)
			}
			if !got.Valid(now, time.Second) {
				t.Errorf("a fresh token is not Valid")
			}
		})
	}
	if (Token{AccessToken: "a"}).Valid(now.Add(1000*time.Hour), time.Hour) != true || (Token{}).Valid(now, 0) {
		t.Error("Valid: a token without expiry must stay valid, and an empty one never is")
	}
}

func TestTokenScopesAcceptCommasAndSpaces(t *testing.T) {
	for in, want := range map[string][]string{
		"repo,gist": {"repo", "gist"}, "a b": {"a", "b"}, "a, b,,c": {"a", "b", "c"}, "": nil,
	} {
		tok := tokenResponse{AccessToken: "x", Scope: in}.token(time.Now(), nil, time.Minute, true)
		if in == "" {
			want = nil
		}
		if !slices.Equal(tok.Scopes, want) {
			t.Errorf("scope %q read as %q, want %q", in, tok.Scopes, want)
		}
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	tok := Token{AccessToken: "AT-secret", RefreshToken: "RT-secret", TokenType: "Bearer"}
	g := Grant{ClientID: "id", ClientSecret: "CS-secret", AuthMethod: AuthClientSecretPost, TokenEndpoint: "http://127.0.0.1:1/token",
		PrivateKey: "-----BEGIN PRIVATE KEY-----\nPK-secret\n-----END PRIVATE KEY-----\n", ExtraParams: map[string]string{"audience": "a"},
		IdPClientID: "idp", IdPClientSecret: "IdP-secret"}
	d := &DeviceAuthorization{UserCode: "ABCD", deviceCode: "DC-secret", grant: g}
	// A real failed token request whose form held the refresh token and client secret, wrapped once
	// more the way the engine reports it.
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, failed := c.Refresh(t.Context(), g, "RT-secret")
	var e *Error
	if !errors.As(failed, &e) || e.Err == nil {
		t.Fatalf("refresh against a closed port = %v, want an *Error with a cause", failed)
	}
	wrapped := fmt.Errorf("refresh srv: %w", failed)
	for _, s := range []string{
		fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok), fmt.Sprintf("%v %+v %#v", g, g, g),
		fmt.Sprintf("%v %+v %#v %s", d, d, d, d), fmt.Sprintf("%v %+v %#v %s", *d, *d, *d, *d),
		printed(e), printed(wrapped), printed(e.Err),
	} {
		for _, secret := range []string{"AT-secret", "RT-secret", "CS-secret", "DC-secret", "PK-secret", "IdP-secret", "refresh_token="} {
			if strings.Contains(s, secret) {
				t.Errorf("printed %s: %s", secret, s)
			}
		}
	}
}

// TestRegistrationRoutes pins the spec's order where the bench's AS cannot vary: a Client ID Metadata
// Document when advertised and configured, and a clear error when no route exists.
func TestRegistrationRoutes(t *testing.T) {
	as := &ASMetadata{Issuer: "https://as.example", AuthorizationEndpoint: "https://as.example/a", TokenEndpoint: "https://as.example/t"}
	p := &Probe{Requirement: OAuthSignIn, Resource: "https://mcp.example/mcp", AuthServer: as}
	c, err := New(Config{ClientMetadataURL: "https://authkeeper.example/client.json"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.clientFor(t.Context(), p, SignInOptions{}); !errors.Is(err, ErrClientIDRequired) {
		t.Errorf("no route: %v, want ErrClientIDRequired", err)
	}
	as.ClientIDMetadataDocumentSupported = true
	p.Registration = RegistrationMetadataDocument
	g, err := c.clientFor(t.Context(), p, SignInOptions{})
	if err != nil || g.ClientID != "https://authkeeper.example/client.json" || g.Registration != RegistrationMetadataDocument || g.AuthMethod != AuthNone {
		t.Errorf("CIMD: %v, %v", g, err)
	}
	g, err = c.clientFor(t.Context(), p, SignInOptions{Client: &StaticClient{ID: "mine"}})
	if err != nil || g.ClientID != "mine" || g.Registration != RegistrationStatic {
		t.Errorf("static first: %v, %v", g, err)
	}
	prev := Grant{Issuer: "https://other.example", Resource: p.Resource, ClientID: "old", Registration: RegistrationDynamic}
	if g, _ := c.clientFor(t.Context(), p, SignInOptions{Previous: &prev}); g.ClientID == "old" {
		t.Error("reused a registration bound to another issuer")
	}
}

func TestNewValidatesConfig(t *testing.T) {
	for _, cfg := range []Config{
		{ClientMetadataURL: "http://authkeeper.example/client.json"},
		{SignInTimeout: -1},
		{MaxScopes: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted a bad config", cfg)
		}
	}
}
