package testbed

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"testing"
)

// Profile names a hosted authorization server whose documented behaviour the bench's AS reproduces
// on top of oidc-provider (see node/as-profiles.mjs, where each quirk is implemented and cited).
// The zero value is the plain bench AS.
type Profile string

const (
	// ProfileDefault is the plain bench AS: open DCR, PKCE S256 advertised, RFC 9207 iss, RFC 8707
	// resource indicators, rotating refresh tokens with reuse detection.
	ProfileDefault Profile = ""
	// ProfileEntra is Microsoft Entra ID v2: a tenant issuer http://127.0.0.1:PORT/<TenantID>/v2.0
	// and an "organizations" metadata document whose issuer is the template
	// http://127.0.0.1:PORT/{tenantid}/v2.0 (AdvertisedIssuer); metadata without
	// code_challenge_methods_supported, registration_endpoint, revocation_endpoint or the RFC 9207
	// flag, and no iss on the callback; pre-registered clients only; `resource` refused on /auth
	// (AADSTS9010010 on the redirect) and /token (400 invalid_target); a refresh without `scope`
	// refused (400 invalid_request, AADSTS90014); AppScope (api://<AppID>/.default) stands for
	// Resource; refresh tokens only with offline_access, renewed on every refresh while the old
	// one stays valid. Access tokens are always JWTs (Opaque is refused).
	ProfileEntra Profile = "entra"
	// ProfileAtlassian is Atlassian Rovo: the metadata served at the advertised issuer's well-known
	// URLs (AdvertisedIssuer, the server root) names another issuer (Issuer, root + "/atl" unless
	// IssuerPath says otherwise); DCR; rotating refresh tokens with reuse detection, a dead one
	// answered 403 invalid_grant "Unknown or invalid refresh token." as Atlassian documents.
	ProfileAtlassian Profile = "atlassian"
	// ProfileSlack is Slack: an issuer mismatch like ProfileAtlassian (Issuer is root + "/slack"),
	// no DCR (a pre-registered confidential client), no revocation endpoint, and every
	// token-endpoint answer carries "ok" — errors come with HTTP 200 and {"ok":false,"error":…}.
	ProfileSlack Profile = "slack"
	// ProfileGitHub is a GitHub OAuth app: Issuer root + "/login/oauth" whose metadata is served only
	// at the RFC 8414 path-inserted URL; no DCR, no revocation endpoint; client_secret_post only; a
	// pre-registered confidential client; opaque access tokens living ten years at the AS (unless
	// AccessTokenTTL is set) answered without expires_in or refresh_token, with token_type "bearer"
	// and `scope` joined by commas; errors with HTTP 200 and GitHub's codes (bad_verification_code,
	// incorrect_client_credentials); a form-encoded answer unless the request accepts JSON.
	ProfileGitHub Profile = "github"
	// ProfileAuth0 is Auth0 (and Okta custom authorization servers): `resource` is ignored and an
	// `audience` parameter on /auth, /token and /device/auth decides the audience of the JWT.
	// Without it the access token is opaque and bound to no resource (userinfo only), so an MCP
	// server refuses it. DCR is open.
	ProfileAuth0 Profile = "auth0"
	// ProfileLegacy serves the 2025-03-26 specification's default endpoint paths — /authorize,
	// /token, /register — so that an MCP server that hides its protected-resource metadata can front
	// the AS on its own origin (see AuthServerOptions.IssuerOrigin and AuthServer.ReverseProxy).
	ProfileLegacy Profile = "legacy"
	// ProfileCIMD enables OAuth Client ID Metadata Documents (oidc-provider's
	// features.clientIdMetadataDocument, draft-02): a client_id that is an https URL is fetched and
	// used as the client's metadata. The fixture serves such documents from a loopback https host
	// (PublishClientMetadata) whose CA node trusts. DCR stays open.
	ProfileCIMD Profile = "cimd"
)

var profiles = []Profile{ProfileDefault, ProfileEntra, ProfileAtlassian, ProfileSlack, ProfileGitHub,
	ProfileAuth0, ProfileLegacy, ProfileCIMD}

// registration reports whether p offers RFC 7591 dynamic client registration.
func (p Profile) registration() bool {
	return p != ProfileEntra && p != ProfileSlack && p != ProfileGitHub
}

// Client authentication methods of StaticClient.AuthMethod (RFC 7591 §2).
const (
	AuthNone              = "none"
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"
)

// Grant types of StaticClient.GrantTypes. GrantDeviceCode is registered as RFC 8628's URN.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantDeviceCode        = "device_code"
)

// StaticClient is a client pre-registered at the AS, as Entra, GitHub and Slack require (they offer no
// dynamic registration). Native clients whose redirect URIs are http loopback URLs
// (http://127.0.0.1/callback, http://localhost/callback) accept any port there, as RFC 8252 §7.3 and
// those providers do (oidc-provider compares such URIs without their port).
type StaticClient struct {
	// ID is the client_id. Default: a fresh identifier in the profile's style (a GUID for Entra).
	ID string
	// Secret is the client secret of a client_secret_* method. Default: a random one when AuthMethod
	// needs it. Never logged.
	Secret string
	// AuthMethod is the token endpoint authentication method: AuthNone, AuthClientSecretBasic,
	// AuthClientSecretPost or AuthPrivateKeyJWT. Default: AuthPrivateKeyJWT when JWKS is set, else
	// AuthClientSecretPost under ProfileGitHub and ProfileSlack, else AuthClientSecretBasic when
	// Secret is set, else AuthNone.
	AuthMethod string
	// RedirectURIs are the registered redirect URIs. Default none (a client_credentials client).
	RedirectURIs []string
	// GrantTypes are GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials and
	// GrantDeviceCode. Default: authorization_code and refresh_token when there are redirect URIs,
	// else client_credentials.
	GrantTypes []string
	// JWKS is the client's public JWK Set ({"keys":[…]}) for AuthPrivateKeyJWT; PublicJWKS builds
	// one. Keys may be RS256, PS256, ES256 or EdDSA ones.
	JWKS json.RawMessage
	// ApplicationType is "native" or "web". Default "native" when every redirect URI is an http
	// loopback one or a private-use scheme, else "web".
	ApplicationType string
}

// defaultClients are the pre-registered clients a profile starts with when
// AuthServerOptions.StaticClients is empty.
func defaultClients(t testing.TB, p Profile) []StaticClient {
	t.Helper()
	switch p {
	case ProfileEntra:
		// An app registration of the "Mobile and desktop applications" platform with the
		// http://localhost redirect: Entra accepts any port on it.
		return []StaticClient{{ID: newGUID(t), AuthMethod: AuthNone,
			RedirectURIs: []string{"http://localhost/callback", "http://127.0.0.1/callback"},
			GrantTypes:   []string{GrantAuthorizationCode, GrantRefreshToken, GrantDeviceCode}}}
	case ProfileGitHub:
		// An OAuth app: client ids look like Ov23li…, secrets are 40 hex digits; a loopback callback
		// URL accepts any port ("Loopback redirect urls" in GitHub's docs). No refresh tokens.
		return []StaticClient{{ID: "Ov23li" + randomHex(t, 7), Secret: randomHex(t, 20),
			AuthMethod: AuthClientSecretPost, RedirectURIs: []string{"http://127.0.0.1/callback"},
			GrantTypes: []string{GrantAuthorizationCode}}}
	case ProfileSlack:
		return []StaticClient{{ID: fmt.Sprintf("%d.%d", 1000000000+randomInt(t, 1e9), 1000000000+randomInt(t, 1e9)),
			Secret: randomHex(t, 16), AuthMethod: AuthClientSecretPost,
			RedirectURIs: []string{"http://127.0.0.1/callback"}}}
	}
	return nil
}

// resolve fills in c's defaults and checks it, failing the test on a bad client.
func (c StaticClient) resolve(t testing.TB, p Profile, n int) StaticClient {
	t.Helper()
	if c.ID == "" {
		c.ID = fmt.Sprintf("bench-static-%d", n+1)
		if p == ProfileEntra {
			c.ID = newGUID(t)
		}
	}
	if c.AuthMethod == "" {
		switch {
		case len(c.JWKS) > 0:
			c.AuthMethod = AuthPrivateKeyJWT
		case p == ProfileGitHub || p == ProfileSlack:
			c.AuthMethod = AuthClientSecretPost
		case c.Secret != "":
			c.AuthMethod = AuthClientSecretBasic
		default:
			c.AuthMethod = AuthNone
		}
	}
	switch c.AuthMethod {
	case AuthClientSecretBasic, AuthClientSecretPost:
		if c.Secret == "" {
			c.Secret = randomString(t)
		}
	case AuthNone:
		if c.Secret != "" {
			t.Fatalf("StaticClient %s: a Secret with AuthMethod none", c.ID)
		}
	case AuthPrivateKeyJWT:
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if json.Unmarshal(c.JWKS, &set) != nil || len(set.Keys) == 0 {
			t.Fatalf("StaticClient %s: private_key_jwt needs a JWKS with keys", c.ID)
		}
	default:
		t.Fatalf("StaticClient %s: unknown AuthMethod %q", c.ID, c.AuthMethod)
	}
	if p == ProfileGitHub && c.AuthMethod != AuthClientSecretPost {
		t.Fatalf("StaticClient %s: GitHub only takes client_secret_post", c.ID)
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{GrantClientCredentials}
		if len(c.RedirectURIs) > 0 {
			c.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
		}
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains([]string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantDeviceCode}, g) {
			t.Fatalf("StaticClient %s: unknown grant type %q", c.ID, g)
		}
	}
	if c.ApplicationType == "" {
		c.ApplicationType = "native"
		for _, r := range c.RedirectURIs {
			u, err := url.Parse(r)
			if err != nil || u.Scheme == "https" || (u.Scheme == "http" && !isLoopback(u)) {
				c.ApplicationType = "web"
			}
		}
	}
	return c
}

// metadata is c as oidc-provider client metadata.
func (c StaticClient) metadata() map[string]any {
	grants := make([]string, 0, len(c.GrantTypes))
	for _, g := range c.GrantTypes {
		if g == GrantDeviceCode {
			g = "urn:ietf:params:oauth:grant-type:device_code"
		}
		grants = append(grants, g)
	}
	m := map[string]any{
		"client_id":                  c.ID,
		"token_endpoint_auth_method": c.AuthMethod,
		"redirect_uris":              append([]string{}, c.RedirectURIs...),
		"grant_types":                grants,
		"response_types":             []string{},
		"application_type":           c.ApplicationType,
	}
	if slices.Contains(c.GrantTypes, GrantAuthorizationCode) {
		m["response_types"] = []string{"code"}
	}
	if c.Secret != "" {
		m["client_secret"] = c.Secret
	}
	if len(c.JWKS) > 0 {
		m["jwks"] = c.JWKS
	}
	return m
}

// PublicJWKS returns a JWK Set holding the public key pub (an *rsa.PublicKey, an *ecdsa.PublicKey on
// P-256, or an ed25519.PublicKey) under kid, for StaticClient.JWKS or a client metadata document.
func PublicJWKS(t testing.TB, kid string, pub crypto.PublicKey) json.RawMessage {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	var jwk map[string]string
	switch k := pub.(type) {
	case *rsa.PublicKey:
		jwk = map[string]string{"kty": "RSA", "alg": "RS256", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			t.Fatal("PublicJWKS: only P-256 ECDSA keys (ES256)")
		}
		raw, err := k.Bytes() // 0x04 || X || Y
		if err != nil {
			t.Fatalf("PublicJWKS: %v", err)
		}
		jwk = map[string]string{"kty": "EC", "alg": "ES256", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}
	case ed25519.PublicKey:
		jwk = map[string]string{"kty": "OKP", "alg": "EdDSA", "crv": "Ed25519", "x": b64(k)}
	default:
		t.Fatalf("PublicJWKS: unsupported key type %T", pub)
	}
	jwk["kid"], jwk["use"] = kid, "sig"
	b, err := json.Marshal(map[string]any{"keys": []any{jwk}})
	if err != nil {
		t.Fatalf("PublicJWKS: %v", err)
	}
	return b
}

// newGUID returns a random RFC 4122 version 4 UUID, the form of Entra's tenant, app and client ids.
func newGUID(t testing.TB) string {
	t.Helper()
	b := []byte(randomHex(t, 16))
	h := string(b)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

func randomInt(t testing.TB, n int64) int64 {
	t.Helper()
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		t.Fatalf("random: %v", err)
	}
	return v.Int64()
}
