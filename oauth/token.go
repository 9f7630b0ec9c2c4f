package oauth

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Token is what a token endpoint granted. Its String and GoString redact the secrets, so printing a
// Token with %v or %#v never leaks one. A Token is a value; copies are independent.
type Token struct {
	// AccessToken is sent as `Authorization: Bearer` to the resource.
	AccessToken string `json:"access_token"`
	// RefreshToken, when non-empty, obtains the next token. Refresh keeps the previous one when the AS
	// rotates nothing (RFC 6749 §6).
	RefreshToken string `json:"refresh_token,omitempty"`
	// TokenType is the token_type the AS returned, normally "Bearer".
	TokenType string `json:"token_type,omitempty"`
	// Expiry is when AccessToken stops working. When the AS omits expires_in it comes from the JWT
	// `exp`, else from Config.DefaultTokenLifetime — except for a token that has neither a refresh
	// token nor any other way to be renewed silently (GitHub OAuth apps): then it is zero, meaning "no
	// expiry" (QuirkNoExpiry), and the token is used until the server refuses it.
	Expiry time.Time `json:"expiry"`
	// Scopes are the scopes granted (the response's `scope`, else the ones requested).
	Scopes []string `json:"scopes,omitempty"`
}

// String describes the token without its secrets.
func (t Token) String() string {
	return fmt.Sprintf("Token{type=%s access=%s refresh=%s expiry=%s scopes=%q}",
		t.TokenType, redact(t.AccessToken), redact(t.RefreshToken), t.Expiry.Format(time.RFC3339), t.Scopes)
}

// GoString makes %#v as safe as %v.
func (t Token) GoString() string { return t.String() }

// Valid reports whether the access token is present and unexpired at now, with skew to spare. A zero
// Expiry means "no expiry" (QuirkNoExpiry): such a token is valid until the server refuses it.
func (t Token) Valid(now time.Time, skew time.Duration) bool {
	return t.AccessToken != "" && (t.Expiry.IsZero() || now.Add(skew).Before(t.Expiry))
}

func redact(s string) string {
	if s == "" {
		return "none"
	}
	return "[redacted]"
}

// tokenResponse is RFC 6749 §5.1, plus the OpenID Connect id_token (read for its `iss` only).
type tokenResponse struct {
	AccessToken  string          `json:"access_token"`
	TokenType    string          `json:"token_type"`
	RefreshToken string          `json:"refresh_token"`
	ExpiresIn    json.RawMessage `json:"expires_in"` // a number, or a string from some providers
	Scope        string          `json:"scope"`
	IDToken      string          `json:"id_token"`
}

// token converts the response. The expiry is expires_in, else the JWT's exp; else, when the token can
// be renewed without the user (renewable: a refresh token is held, or the client credentials grant),
// the conservative default; else zero, "no expiry" (a GitHub OAuth app's token: refreshing early could
// only end in a needless sign-in). The scope may be space- or comma-separated (GitHub).
func (r tokenResponse) token(now time.Time, requested []string, fallback time.Duration, renewable bool) Token {
	t := Token{AccessToken: r.AccessToken, RefreshToken: r.RefreshToken, TokenType: r.TokenType}
	if t.TokenType == "" || strings.EqualFold(t.TokenType, "bearer") {
		t.TokenType = "Bearer"
	}
	if s := splitScope(r.Scope); len(s) > 0 {
		t.Scopes = s
	} else {
		t.Scopes = append([]string(nil), requested...)
	}
	switch secs, ok := parseExpiresIn(r.ExpiresIn); {
	case ok:
		t.Expiry = now.Add(time.Duration(secs) * time.Second)
	default:
		if exp, ok := jwtExpiry(r.AccessToken); ok {
			t.Expiry = exp
		} else if _, jwt := readJWT(r.AccessToken); renewable || r.RefreshToken != "" || jwt {
			t.Expiry = now.Add(fallback)
		} // else zero: no expiry
	}
	return t
}

// splitScope reads a `scope` value: space-separated as RFC 6749 §3.3 says, or comma-separated as
// GitHub sends it ("repo,gist").
func splitScope(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
}

// maxExpiresIn caps a lifetime in seconds: beyond about 9.2e9 s, time.Duration overflows and an
// expiry would land in the past. No token or device code is meant to live longer than a year.
const maxExpiresIn = 365 * 24 * 60 * 60

// parseExpiresIn reads a positive number of seconds sent as a JSON number or string (expires_in,
// interval), capped at maxExpiresIn.
func parseExpiresIn(raw json.RawMessage) (int64, bool) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if s == "" || s == "null" {
		return 0, false
	}
	var n json.Number = json.Number(s)
	if i, err := n.Int64(); err == nil && i > 0 {
		return min(i, maxExpiresIn), true
	}
	if f, err := n.Float64(); err == nil && f >= 1 {
		return int64(min(f, maxExpiresIn)), true
	}
	return 0, false
}

// jwtClaims are the unverified claims authkeeper reads from a JWT it holds.
type jwtClaims struct {
	Exp json.Number `json:"exp"`
	Iss string      `json:"iss"`
	Tid string      `json:"tid"` // Entra's tenant id
}

// readJWT decodes a JWT's claims without verifying it. The values only schedule a refresh or
// cross-check an issuer the AS already vouched for over TLS; the resource server validates tokens.
func readJWT(tok string) (jwtClaims, bool) {
	var claims jwtClaims
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return claims, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return claims, false
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return jwtClaims{}, false
	}
	return claims, true
}

// jwtExpiry reads `exp` from a JWT access token without verifying it: the value only schedules the
// next refresh, and the resource server is the one that validates the token.
func jwtExpiry(tok string) (time.Time, bool) {
	claims, ok := readJWT(tok)
	if !ok {
		return time.Time{}, false
	}
	exp, err := claims.Exp.Float64()
	if err != nil || exp <= 0 || exp > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(exp), 0), true
}
