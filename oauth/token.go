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
	// Expiry is when AccessToken stops working. Never zero: when the AS omits expires_in it comes from
	// the JWT `exp`, else from Config.DefaultTokenLifetime.
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

// Valid reports whether the access token is present and unexpired at now, with skew to spare.
func (t Token) Valid(now time.Time, skew time.Duration) bool {
	return t.AccessToken != "" && now.Add(skew).Before(t.Expiry)
}

func redact(s string) string {
	if s == "" {
		return "none"
	}
	return "[redacted]"
}

// tokenResponse is RFC 6749 §5.1.
type tokenResponse struct {
	AccessToken  string          `json:"access_token"`
	TokenType    string          `json:"token_type"`
	RefreshToken string          `json:"refresh_token"`
	ExpiresIn    json.RawMessage `json:"expires_in"` // a number, or a string from some providers
	Scope        string          `json:"scope"`
}

// token converts the response, deciding the expiry as the issue requires: expires_in, else the JWT's
// exp, else the conservative default — never "never expires".
func (r tokenResponse) token(now time.Time, requested []string, fallback time.Duration) Token {
	t := Token{AccessToken: r.AccessToken, RefreshToken: r.RefreshToken, TokenType: r.TokenType}
	if t.TokenType == "" {
		t.TokenType = "Bearer"
	}
	if r.Scope != "" {
		t.Scopes = strings.Fields(r.Scope)
	} else {
		t.Scopes = append([]string(nil), requested...)
	}
	if secs, ok := parseExpiresIn(r.ExpiresIn); ok {
		t.Expiry = now.Add(time.Duration(secs) * time.Second)
	} else if exp, ok := jwtExpiry(r.AccessToken); ok {
		t.Expiry = exp
	} else {
		t.Expiry = now.Add(fallback)
	}
	return t
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

// jwtExpiry reads `exp` from a JWT access token without verifying it: the value only schedules the
// next refresh, and the resource server is the one that validates the token.
func jwtExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return time.Time{}, false
	}
	exp, err := claims.Exp.Float64()
	if err != nil || exp <= 0 || exp > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(exp), 0), true
}
