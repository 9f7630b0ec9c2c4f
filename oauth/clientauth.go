package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// clientAuth authenticates a request as the grant's client in its registered way.
type clientAuth struct {
	id, secret string
	method     AuthMethod
	// key, kid and audience sign private_key_jwt assertions; now dates them.
	key, kid, audience string
	now                func() time.Time
}

func (c *Client) authOf(g Grant) clientAuth {
	return clientAuth{id: g.ClientID, secret: g.ClientSecret, method: g.AuthMethod,
		key: g.PrivateKey, kid: g.KeyID, audience: assertionAudience(g), now: c.clock.Now}
}

// assertionAudience is the `aud` of a client assertion: the AS's issuer identifier, as
// draft-ietf-oauth-rfc7523bis §4 requires (a token-endpoint audience enabled the 2025 audience
// injection attacks) and as oidc-provider and the MCP conformance suite accept. A templated issuer
// (Entra {tenantid}) is no identifier: the token endpoint stands in for it.
func assertionAudience(g Grant) string {
	if isTemplate(g.Issuer) {
		return g.TokenEndpoint
	}
	return g.Issuer
}

// apply puts the client's credentials in the body: always client_id unless Basic carries it (a public
// client must send it, RFC 6749 §3.2.1), plus the secret for client_secret_post, or a signed assertion
// for private_key_jwt (RFC 7523 §2.2).
func (a clientAuth) apply(form url.Values) error {
	switch a.method {
	case AuthClientSecretBasic:
		if a.secret == "" {
			form.Set("client_id", a.id)
		}
	case AuthClientSecretPost:
		form.Set("client_id", a.id)
		form.Set("client_secret", a.secret)
	case AuthPrivateKeyJWT:
		assertion, err := clientAssertion(a.id, a.audience, a.key, a.kid, a.now())
		if err != nil {
			return err
		}
		form.Set("client_id", a.id)
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", assertion)
	default:
		form.Set("client_id", a.id)
	}
	return nil
}

// secrets are the forms in which the client's secret travels and may be echoed into an
// error_description, for scrub: the secret itself (the body of client_secret_post), and the HTTP
// Basic credentials applyHeader sends — base64 of id:secret form-encoded first as RFC 6749 §2.3.1
// asks, and of the raw pair, which an AS that decodes and re-encodes them may echo — padded and not
// (the padded form first: scrub replaces in order, and the unpadded one is its prefix).
func (a clientAuth) secrets() []string {
	if a.secret == "" {
		return nil
	}
	out := []string{a.secret}
	for _, pair := range []string{url.QueryEscape(a.id) + ":" + url.QueryEscape(a.secret), a.id + ":" + a.secret} {
		out = append(out, base64.StdEncoding.EncodeToString([]byte(pair)), base64.RawStdEncoding.EncodeToString([]byte(pair)))
	}
	return out
}

// applyHeader sets HTTP Basic for client_secret_basic, form-encoding both parts as RFC 6749 §2.3.1 asks.
func (a clientAuth) applyHeader(req *http.Request) {
	if a.method == AuthClientSecretBasic && a.secret != "" {
		req.SetBasicAuth(url.QueryEscape(a.id), url.QueryEscape(a.secret))
	}
}

// secretMethod picks how a client holding a secret authenticates, from the AS's
// token_endpoint_auth_methods_supported (RFC 8414 §2): client_secret_basic when listed or when the list
// is absent (RFC 6749 §2.3.1 makes Basic the one every AS must support), else client_secret_post when
// listed, else Basic and let the AS say no.
func secretMethod(as *ASMetadata) AuthMethod {
	if as == nil || len(as.TokenEndpointAuthMethodsSupported) == 0 ||
		slices.Contains(as.TokenEndpointAuthMethodsSupported, string(AuthClientSecretBasic)) {
		return AuthClientSecretBasic
	}
	if slices.Contains(as.TokenEndpointAuthMethodsSupported, string(AuthClientSecretPost)) {
		return AuthClientSecretPost
	}
	return AuthClientSecretBasic
}

// errBadPrivateKey: the private key of a private_key_jwt client cannot be used. The message never
// quotes the key.
var errBadPrivateKey = errors.New("oauth: private key must be a PEM RSA or ECDSA P-256 key (PKCS #8, PKCS #1 or SEC 1)")

// assertionLifetime bounds a client assertion's validity; RFC 7523 §3 asks for an expiry, and a short
// one limits what a leaked assertion is worth (it is also single-use through jti).
const assertionLifetime = 5 * time.Minute

// clientAssertion signs an RFC 7523 §3 client authentication JWT: iss = sub = the client id, aud, a
// unique jti, iat and exp five minutes later, RS256 or ES256 by the key's type.
func clientAssertion(clientID, audience, keyPEM, kid string, now time.Time) (string, error) {
	key, err := parsePrivateKey(keyPEM)
	if err != nil {
		return "", err
	}
	header := map[string]string{"typ": "JWT"}
	if kid != "" {
		header["kid"] = kid
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		header["alg"] = "RS256"
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return "", errBadPrivateKey
		}
		header["alg"] = "ES256"
	}
	claims := map[string]any{
		"iss": clientID, "sub": clientID, "aud": audience, "jti": randomString(16),
		"iat": now.Unix(), "exp": now.Add(assertionLifetime).Unix(),
	}
	h, err1 := json.Marshal(header)
	p, err2 := json.Marshal(claims)
	if err := errors.Join(err1, err2); err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding.EncodeToString
	input := enc(h) + "." + enc(p)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	case *ecdsa.PrivateKey:
		sig, err = ecdsaJWS(k, sum[:])
	}
	if err != nil {
		return "", fmt.Errorf("sign client assertion: %w", err)
	}
	return input + "." + enc(sig), nil
}

// ecdsaJWS signs digest as JWS ES256 wants it (RFC 7518 §3.4): r and s, 32 bytes each, concatenated.
func ecdsaJWS(k *ecdsa.PrivateKey, digest []byte) ([]byte, error) {
	r, s, err := ecdsa.Sign(rand.Reader, k, digest)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}

// parsePrivateKey reads the first private key PEM block: PKCS #8, PKCS #1 (RSA) or SEC 1 (EC).
func parsePrivateKey(keyPEM string) (crypto.Signer, error) {
	rest := []byte(keyPEM)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errBadPrivateKey
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue // e.g. EC PARAMETERS before the key
		}
		if err != nil {
			return nil, errBadPrivateKey // not err: it might describe the key's bytes
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			return k, nil
		case *ecdsa.PrivateKey:
			return k, nil
		}
		return nil, errBadPrivateKey
	}
}
