package testbed

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// tokenVerifier checks the access tokens presented to one protected resource, either as RFC 9068 JWTs
// signed by a key of the authorization server's JWKS or, in opaque mode, by RFC 7662 introspection.
// Safe for concurrent use.
//
// A rejected token yields an error wrapping auth.ErrInvalidToken (the SDK answers 401); a failure to
// reach the authorization server yields any other error (the SDK answers 500). No error ever carries
// the token.
type tokenVerifier struct {
	resource     string // the RFC 8707 resource the token's aud must name
	meta         *oauthex.AuthServerMeta
	opaque       bool
	clientID     string // introspection client, for opaque mode
	clientSecret string
	hc           *http.Client

	mu   sync.Mutex
	keys map[string]crypto.PublicKey // by kid; refetched when a token names an unknown kid
}

// accessClaims are the RFC 9068 claims the bench reads from a JWT access token.
type accessClaims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
}

// newTokenVerifier discovers the metadata of the authorization server issuer (RFC 8414, then OpenID
// Connect discovery, as the MCP specification orders them) for the tokens of resource. It asks at
// discoverAt, which is the issuer itself except for an issuer that is another server's origin (a
// 2025-03-26 server fronting its AS), where the metadata is asked of the AS's own address.
//
// The metadata is read leniently, as a resource server reads it: without the PKCE check of the SDK's
// client-side discovery (Entra advertises no code_challenge_methods_supported), and with an issuer
// that may be a {tenantid} template (Entra's /common) matching issuer.
func newTokenVerifier(ctx context.Context, issuer, discoverAt, resource string, opts MCPServerOptions) (*tokenVerifier, error) {
	hc := &http.Client{Timeout: 10 * time.Second}
	meta, err := discoverAS(ctx, hc, issuer, discoverAt)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", issuer, err)
	}
	v := &tokenVerifier{resource: resource, meta: meta, opaque: opts.Opaque, hc: hc,
		clientID: opts.IntrospectionClientID, clientSecret: opts.IntrospectionClientSecret}
	if v.opaque && meta.IntrospectionEndpoint == "" {
		return nil, fmt.Errorf("discover %s: no introspection_endpoint", issuer)
	}
	if !v.opaque && meta.JWKSURI == "" {
		return nil, fmt.Errorf("discover %s: no jwks_uri", issuer)
	}
	return v, nil
}

// discoverAS fetches the metadata of issuer from the well-known locations of base, in the MCP
// specification's order, skipping those that answer 4xx.
func discoverAS(ctx context.Context, hc *http.Client, issuer, base string) (*oauthex.AuthServerMeta, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	p := strings.TrimSuffix(u.Path, "/")
	candidates := []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"}
	if p != "" {
		candidates = []string{"/.well-known/oauth-authorization-server" + p, "/.well-known/openid-configuration" + p, p + "/.well-known/openid-configuration"}
	}
	v := &tokenVerifier{hc: hc}
	for _, c := range candidates {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.Scheme+"://"+u.Host+c, nil)
		if err != nil {
			return nil, err
		}
		var meta oauthex.AuthServerMeta
		err = v.doJSON(req, &meta)
		if se := (*statusError)(nil); errors.As(err, &se) && se.code/100 == 4 {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !issuerMatches(meta.Issuer, issuer) {
			return nil, fmt.Errorf("%s names issuer %q", req.URL, meta.Issuer)
		}
		return &meta, nil
	}
	return nil, errors.New("no authorization server metadata")
}

// issuerMatches reports whether iss is the issuer the metadata names: the same string or, for a
// metadata issuer that is a template such as https://login.microsoftonline.com/{tenantid}/v2.0 (Entra's
// multi-tenant endpoints), that template with {tenantid} replaced by one non-empty path segment.
func issuerMatches(metaIssuer, iss string) bool {
	prefix, suffix, templated := strings.Cut(metaIssuer, "{tenantid}")
	if !templated {
		return metaIssuer == iss
	}
	if len(iss) <= len(prefix)+len(suffix) || !strings.HasPrefix(iss, prefix) || !strings.HasSuffix(iss, suffix) {
		return false
	}
	return !strings.Contains(iss[len(prefix):len(iss)-len(suffix)], "/")
}

// Verify is an auth.TokenVerifier.
func (v *tokenVerifier) Verify(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
	if v.opaque {
		return v.introspect(ctx, token)
	}
	var c accessClaims
	_, err := jwt.ParseWithClaims(token, &c, func(tok *jwt.Token) (any, error) {
		// RFC 9068 §4: the resource server must reject a JWT whose typ is not at+jwt, so an ID token
		// signed by the same key is never accepted as an access token.
		typ, _ := tok.Header["typ"].(string)
		if t := strings.ToLower(typ); t != "at+jwt" && t != "application/at+jwt" {
			return nil, fmt.Errorf("typ %q is not at+jwt", typ)
		}
		kid, _ := tok.Header["kid"].(string)
		return v.key(ctx, kid)
	},
		jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}),
		jwt.WithAudience(v.resource),
		jwt.WithExpirationRequired(),
	)
	if err != nil {
		if errors.Is(err, errASUnreachable) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", auth.ErrInvalidToken, err)
	}
	// Checked here rather than by jwt.WithIssuer, which knows no {tenantid} template.
	if !issuerMatches(v.meta.Issuer, c.Issuer) {
		return nil, fmt.Errorf("%w: issuer %q is not %q", auth.ErrInvalidToken, c.Issuer, v.meta.Issuer)
	}
	return mcpTokenInfo(c.Subject, c.ClientID, c.Scope, c.ExpiresAt.Time), nil
}

// errASUnreachable marks a failure to reach the authorization server, as opposed to a bad token.
var errASUnreachable = errors.New("authorization server unreachable")

// key returns the verification key named kid, refetching the JWKS once when kid is unknown so that
// a key rotation at the authorization server is picked up. The refetch is not throttled and holds the
// lock: a production verifier would rate-limit it, a bench never faces a flood of forged kids.
func (v *tokenVerifier) key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if k, ok := v.keys[kid]; ok {
		return k, nil
	}
	keys, err := v.fetchJWKS(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: jwks: %v", errASUnreachable, err)
	}
	v.keys = keys
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("no key with kid %q", kid)
}

func (v *tokenVerifier) fetchJWKS(ctx context.Context) (map[string]crypto.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.meta.JWKSURI, nil)
	if err != nil {
		return nil, err
	}
	var set struct {
		Keys []publicJWK `json:"keys"`
	}
	if err := v.doJSON(req, &set); err != nil {
		return nil, err
	}
	keys := make(map[string]crypto.PublicKey)
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if pk, err := k.publicKey(); err == nil {
			keys[k.Kid] = pk
		}
	}
	return keys, nil
}

// introspect asks the authorization server about an opaque token (RFC 7662 §2), authenticating with
// client_secret_basic, and accepts it only if it is active, unexpired and bound to this resource.
func (v *tokenVerifier) introspect(ctx context.Context, token string) (*auth.TokenInfo, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.meta.IntrospectionEndpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// RFC 6749 §2.3.1: the credentials are form-urlencoded before Basic encoding.
	req.SetBasicAuth(url.QueryEscape(v.clientID), url.QueryEscape(v.clientSecret))
	var r struct {
		Active   bool             `json:"active"`
		Sub      string           `json:"sub"`
		ClientID string           `json:"client_id"`
		Scope    string           `json:"scope"`
		Exp      int64            `json:"exp"`
		Iss      string           `json:"iss"`
		Aud      jwt.ClaimStrings `json:"aud"`
	}
	if err := v.doJSON(req, &r); err != nil {
		return nil, fmt.Errorf("%w: introspection: %v", errASUnreachable, err)
	}
	switch {
	case !r.Active:
		return nil, fmt.Errorf("%w: token is not active", auth.ErrInvalidToken)
	case r.Iss != "" && !issuerMatches(v.meta.Issuer, r.Iss):
		return nil, fmt.Errorf("%w: issuer %q is not %q", auth.ErrInvalidToken, r.Iss, v.meta.Issuer)
	case !slices.Contains(r.Aud, v.resource):
		return nil, fmt.Errorf("%w: audience %q does not name %s", auth.ErrInvalidToken, []string(r.Aud), v.resource)
	}
	return mcpTokenInfo(r.Sub, r.ClientID, r.Scope, time.Unix(r.Exp, 0)), nil
}

func mcpTokenInfo(sub, clientID, scope string, exp time.Time) *auth.TokenInfo {
	return &auth.TokenInfo{
		Scopes:     strings.Fields(scope),
		Expiration: exp,
		// UserID binds a session to its user: the SDK answers 403 to a request for that session made
		// with another user's token.
		UserID: sub,
		Extra:  map[string]any{"sub": sub, "client_id": clientID},
	}
}

// doJSON performs req and decodes a 200 JSON answer of at most 1 MiB into out.
func (v *tokenVerifier) doJSON(req *http.Request, out any) error {
	resp, err := v.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &statusError{code: resp.StatusCode, msg: fmt.Sprintf("%s %s: %s", req.Method, req.URL, resp.Status)}
	}
	return json.Unmarshal(body, out)
}

// statusError is a non-200 answer to doJSON.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// publicJWK is the subset of an RFC 7517 public key the bench verifies with.
type publicJWK struct {
	Kty, Kid, Use, Crv, N, E, X, Y string
}

func (k publicJWK) publicKey() (crypto.PublicKey, error) {
	dec := base64.RawURLEncoding.DecodeString
	switch k.Kty {
	case "RSA":
		n, err1 := dec(k.N)
		e, err2 := dec(k.E)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	case "EC":
		curves := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}
		curve, ok := curves[k.Crv]
		if !ok {
			return nil, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		x, err1 := dec(k.X)
		y, err2 := dec(k.Y)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		return ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
	case "OKP":
		x, err := dec(k.X)
		if err != nil || k.Crv != "Ed25519" || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("unsupported OKP key %q", k.Crv)
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, fmt.Errorf("unsupported kty %q", k.Kty)
}
