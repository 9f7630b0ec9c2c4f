package oauth

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const entraTemplate = "https://login.microsoftonline.com/{tenantid}/v2.0"

func TestIssuerTemplateMatching(t *testing.T) {
	for _, c := range []struct {
		issuer   string
		fits     bool // matchTemplate: the shape fits (metadata asked of /common, /organizations, a tenant)
		concrete bool // concreteTenant: one real tenant
	}{
		{"https://login.microsoftonline.com/organizations/v2.0", true, false},
		{"https://login.microsoftonline.com/common/v2.0/", true, false},
		{"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0", true, true},
		{"https://login.microsoftonline.com/{tenantid}/v2.0", true, false},
		{"https://login.microsoftonline.com/72f988bf/v1.0", false, false},
		{"https://login.microsoftonline.com/72f988bf/extra/v2.0", false, false},
		{"https://login.microsoftonline.com//v2.0", false, false},
		{"https://evil.example/72f988bf/v2.0", false, false},
		{"http://login.microsoftonline.com/72f988bf/v2.0", false, false},
	} {
		_, fits := matchTemplate(entraTemplate, c.issuer)
		if fits != c.fits || concreteTenant(entraTemplate, c.issuer) != c.concrete {
			t.Errorf("%s: fits %t concrete %t, want %t %t", c.issuer, fits, concreteTenant(entraTemplate, c.issuer), c.fits, c.concrete)
		}
	}
	if got := fillTemplate(entraTemplate, "t1"); got != "https://login.microsoftonline.com/t1/v2.0" {
		t.Errorf("fillTemplate = %q", got)
	}
}

// TestResolveTenantCrossChecksEverySource: under a templated issuer the callback's iss, the id token's
// and the access token's must name one concrete tenant; an Entra v1 access token (sts.windows.net)
// contributes its tid.
func TestResolveTenantCrossChecksEverySource(t *testing.T) {
	t1 := "https://login.microsoftonline.com/t1/v2.0"
	t2 := "https://login.microsoftonline.com/t2/v2.0"
	res := func(access string, idIss string) issued {
		r := issued{tok: Token{AccessToken: access}}
		if idIss != "" {
			r.idToken = &jwtClaims{Iss: idIss}
		}
		return r
	}
	at := func(iss, tid string) string { return jwtWith(fmt.Sprintf(`{"iss":%q,"tid":%q}`, iss, tid)) }
	for _, c := range []struct {
		name     string
		callback string
		res      issued
		want     string
		err      bool
	}{
		{"AccessToken", "", res(at(t1, "t1"), ""), t1, false},
		{"CallbackAndToken", t1, res(at(t1, "t1"), t1), t1, false},
		{"V1AccessTokenTid", "", res(at("https://sts.windows.net/t1/", "t1"), ""), t1, false},
		{"OpaqueNothingKnown", "", res("opaque", ""), "", false},
		{"TokenOfAnotherTenant", t1, res(at(t2, "t2"), ""), "", true},
		{"IDTokenOfAnotherTenant", "", res(at(t1, "t1"), t2), "", true},
		{"MultiTenantAlias", "", res(at("https://login.microsoftonline.com/common/v2.0", ""), ""), "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := resolveTenant(entraTemplate, c.callback, c.res)
			if (err != nil) != c.err || (err != nil && !errors.Is(err, ErrIssuerMismatch)) || got != c.want {
				t.Errorf("resolveTenant = %q, %v; want %q (error %t)", got, err, c.want, c.err)
			}
		})
	}
}

func TestCheckIssAgainstATemplate(t *testing.T) {
	as := &ASMetadata{Issuer: entraTemplate}
	for iss, ok := range map[string]bool{
		"https://login.microsoftonline.com/t1/v2.0":            true,
		"https://login.microsoftonline.com/organizations/v2.0": false,
		entraTemplate:                  false,
		"https://evil.example/t1/v2.0": false,
	} {
		if err := checkIss(as, url.Values{"iss": {iss}}); (err == nil) != ok {
			t.Errorf("checkIss(%q) = %v, want ok %t", iss, err, ok)
		}
	}
	if err := checkIss(&ASMetadata{Issuer: "https://as.example"}, url.Values{"iss": {"https://as.example/"}}); err == nil {
		t.Error("RFC 9207 iss must equal a plain issuer exactly")
	}
}

// TestRequestScopesKeepsDotDefaultAlone pins AADSTS70011: a `.default` scope goes with OpenID and
// offline_access scopes only, whatever else was granted or challenged; and nothing repeats.
func TestRequestScopesKeepsDotDefaultAlone(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"api://a/.default", "api://a/mcp.read", "offline_access", "openid"}, []string{"api://a/.default", "offline_access", "openid"}},
		{[]string{"mcp:read", "mcp:read", "offline_access"}, []string{"mcp:read", "offline_access"}},
		{nil, nil},
	} {
		if got := requestScopes(c.in); !slices.Equal(got, c.want) {
			t.Errorf("requestScopes(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSecretMethodFollowsTheMetadata(t *testing.T) {
	for _, c := range []struct {
		listed []string
		want   AuthMethod
	}{
		{nil, AuthClientSecretBasic},
		{[]string{"client_secret_post", "client_secret_basic"}, AuthClientSecretBasic},
		{[]string{"client_secret_post"}, AuthClientSecretPost},
		{[]string{"private_key_jwt"}, AuthClientSecretBasic},
	} {
		if got := secretMethod(&ASMetadata{TokenEndpointAuthMethodsSupported: c.listed}); got != c.want {
			t.Errorf("secretMethod(%q) = %q, want %q", c.listed, got, c.want)
		}
	}
	sc := &StaticClient{ID: "x", PrivateKey: "k"}
	if staticMethod(sc, nil) != AuthPrivateKeyJWT {
		t.Error("a static client with a private key must use private_key_jwt")
	}
}

// TestClientAssertionIsAVerifiableRFC7523JWT checks the assertion's header, claims and signature with
// the standard library, for both key types.
func TestClientAssertionIsAVerifiableRFC7523JWT(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, kind := range []string{"rsa", "ec"} {
		t.Run(kind, func(t *testing.T) {
			keyPEM, pub := pemKey(t, kind)
			jwt, err := clientAssertion("client-1", "https://as.example", keyPEM, "kid-1", now)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(jwt, ".")
			dec := func(s string) []byte {
				b, err := base64.RawURLEncoding.DecodeString(s)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			var header map[string]string
			var claims map[string]any
			if json.Unmarshal(dec(parts[0]), &header) != nil || json.Unmarshal(dec(parts[1]), &claims) != nil {
				t.Fatalf("undecodable assertion")
			}
			wantAlg := map[string]string{"rsa": "RS256", "ec": "ES256"}[kind]
			if diff := cmp.Diff(map[string]string{"alg": wantAlg, "typ": "JWT", "kid": "kid-1"}, header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			if claims["iss"] != "client-1" || claims["sub"] != "client-1" || claims["aud"] != "https://as.example" ||
				claims["jti"] == "" || claims["exp"].(float64)-claims["iat"].(float64) != 300 {
				t.Errorf("claims = %v", claims)
			}
			sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
			sig := dec(parts[2])
			switch k := pub.(type) {
			case *rsa.PublicKey:
				err = rsa.VerifyPKCS1v15(k, 5, sum[:], sig) // crypto.SHA256 == 5
			case *ecdsa.PublicKey:
				if len(sig) != 64 || !ecdsa.Verify(k, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
					err = errors.New("bad ES256 signature")
				}
			}
			if err != nil {
				t.Errorf("signature: %v", err)
			}
		})
	}
	if _, err := clientAssertion("c", "a", "not a key", "", now); !errors.Is(err, errBadPrivateKey) {
		t.Errorf("bad key: %v", err)
	}
}

func TestEveryQuirkDescribesItself(t *testing.T) {
	for _, q := range []Quirk{QuirkPKCEAssumed, QuirkIssuerMismatch, QuirkIssuerTemplate, QuirkResourceOmitted,
		QuirkScopeOnRefresh, QuirkNoExpiry, QuirkLegacyDiscovery, QuirkDefaultEndpoints, QuirkErrorsIn200} {
		if d := q.Describe(); d == "" || strings.HasPrefix(d, "Unknown") || !strings.HasSuffix(d, ".") {
			t.Errorf("%s.Describe() = %q", q, d)
		}
	}
}

// TestLearnRecordsTheLatestSignInsTenant pins Grant.TenantIssuer's contract: within a sign-in the
// sources must agree, but a later sign-in may name another tenant (the user chose an account of
// another organisation) and replaces it rather than being refused.
func TestLearnRecordsTheLatestSignInsTenant(t *testing.T) {
	t1 := "https://login.microsoftonline.com/t1/v2.0"
	t2 := "https://login.microsoftonline.com/t2/v2.0"
	at := func(iss string) issued {
		return issued{tok: Token{AccessToken: jwtWith(fmt.Sprintf(`{"iss":%q}`, iss))}}
	}
	bound := Grant{Issuer: entraTemplate, TenantIssuer: t1}
	for _, c := range []struct {
		name     string
		callback string
		res      issued
		want     string
		mismatch bool
	}{
		{"SameTenant", t1, at(t1), t1, false},
		{"AnotherTenantsAccount", t2, at(t2), t2, false},
		{"SourcesDisagree", t2, at(t1), "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := learn(entraTemplate, bound, c.callback, c.res)
			if c.mismatch {
				if !errors.Is(err, ErrIssuerMismatch) {
					t.Fatalf("learn = %v, want ErrIssuerMismatch", err)
				}
				return
			}
			if err != nil || g.TenantIssuer != c.want {
				t.Errorf("learn = tenant %q, %v; want %q", g.TenantIssuer, err, c.want)
			}
		})
	}
}

// TestErrorsSentWith200AreRecordedInTheGrant: an AS answering an OAuth error with HTTP 200 (GitHub,
// Slack) is a tolerated deviation, so the grant every exchange returns records QuirkErrorsIn200 —
// after a failure too, and after a device flow whose pending polls came with 200 and which then
// succeeded. The same error with its proper status records nothing. (A loopback AS.)
func TestErrorsSentWith200AreRecordedInTheGrant(t *testing.T) {
	answer := func(status int, code string, then bool) func(int, url.Values) (int, string) {
		return func(n int, _ url.Values) (int, string) {
			if then && n > 0 {
				return tokenOK(n)
			}
			return status, `{"error":"` + code + `"}`
		}
	}
	for _, c := range []struct {
		name  string
		token func(int, url.Values) (int, string)
		run   func(t *testing.T, client *Client, p *Probe, g Grant) (Grant, error)
		ok    bool // the exchange succeeds in the end
		want  bool // QuirkErrorsIn200 recorded
	}{
		{"RefreshIn200", answer(200, "invalid_grant", false), refreshOnce, false, true},
		{"RefreshIn400", answer(400, "invalid_grant", false), refreshOnce, false, false},
		{"RefreshSucceeds", nil, refreshOnce, true, false},
		{"SignInExchangeIn200", answer(200, "invalid_grant", false), signInOnce, false, true},
		{"ClientCredentialsIn200", answer(200, "invalid_client", false), func(t *testing.T, client *Client, p *Probe, _ Grant) (Grant, error) {
			_, g, err := client.ClientCredentials(t.Context(), p, StaticClient{ID: "machine", Secret: "s"}, SignInOptions{})
			return g, err
		}, false, true},
		{"DevicePendingIn200ThenToken", answer(200, "authorization_pending", true), deviceOnce, true, true},
		{"DevicePendingIn400ThenToken", answer(400, "authorization_pending", true), deviceOnce, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			as := newMiniAS(t, false, c.token)
			cfg := Config{Opener: &pageBrowser{}, SignInTimeout: 10 * time.Second}
			if strings.HasPrefix(c.name, "Device") {
				// The fake clock skips the polling interval. Only the device flow's: a sign-in's
				// timeout on it would fire 10 ms after the browser opens, before the round trip.
				clock := newFakeClock()
				cfg.Clock, cfg.After = clock, clock.After
			}
			client, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			p, err := client.Probe(t.Context(), as.URL+"/mcp")
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			g := Grant{Resource: p.Resource, Issuer: as.URL, TokenEndpoint: as.URL + "/token", ClientID: "c", AuthMethod: AuthNone,
				Registration: RegistrationDynamic, RegistrationEndpoint: as.URL + "/register"}
			g, err = c.run(t, client, p, g)
			if (err == nil) != c.ok {
				t.Fatalf("exchange error = %v, want success %t", err, c.ok)
			}
			if g.HasQuirk(QuirkErrorsIn200) != c.want {
				t.Errorf("grant quirks %q, want errors-in-200 recorded: %t", g.Quirks, c.want)
			}
		})
	}
}

func refreshOnce(t *testing.T, client *Client, _ *Probe, g Grant) (Grant, error) {
	_, g, err := client.Refresh(t.Context(), g, "RT")
	return g, err
}

func signInOnce(t *testing.T, client *Client, p *Probe, _ Grant) (Grant, error) {
	_, g, err := client.SignIn(t.Context(), p, SignInOptions{})
	return g, err
}

func deviceOnce(t *testing.T, client *Client, p *Probe, _ Grant) (Grant, error) {
	d, err := client.StartDevice(t.Context(), p, SignInOptions{})
	if err != nil {
		t.Fatalf("StartDevice: %v", err)
	}
	_, g, err := client.PollDevice(t.Context(), d)
	return g, err
}
