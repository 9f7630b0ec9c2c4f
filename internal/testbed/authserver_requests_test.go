package testbed

import (
	"crypto/ecdsa"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
)

// authRequest returns the query of a PKCE S256 authorization request, and its code verifier.
func authRequest(clientID, redirect, scope string, extra url.Values) (url.Values, string) {
	verifier := oauth2.GenerateVerifier()
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect}, "scope": {scope},
		"state": {oauth2.GenerateVerifier()[:16]}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)},
		"code_challenge_method": {"S256"}}
	for k, v := range extra {
		q[k] = v
	}
	return q, verifier
}

// authorize walks an authorization request through the scripted browser, signing in and consenting,
// and returns the query of the callback it reached (not delivered).
func authorize(t *testing.T, endpoint string, q url.Values) url.Values {
	t.Helper()
	b := NewBrowser(t, BrowserOptions{NoDeliver: true})
	if err := b.Open(endpoint + "?" + q.Encode()); err != nil {
		t.Fatal(err)
	}
	v, err := b.Wait(t.Context())
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	cb, err := url.Parse(v.Callback)
	if err != nil {
		t.Fatal(err)
	}
	return cb.Query()
}

// postToken POSTs form to a token endpoint accepting JSON, after auth (if set) edits the request,
// and returns the status, the headers and the decoded JSON body.
func postToken(t *testing.T, endpoint string, form url.Values, auth func(*http.Request)) (int, http.Header, map[string]any) {
	t.Helper()
	status, h, raw := postTokenRaw(t, endpoint, form, auth, "application/json")
	var body map[string]any
	_ = json.Unmarshal([]byte(raw), &body) // a non-JSON answer leaves nil
	return status, h, body
}

func postTokenRaw(t *testing.T, endpoint string, form url.Values, auth func(*http.Request), accept string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("POST %s: %v", endpoint, err)
	}
	return resp.StatusCode, resp.Header, string(raw)
}

// clientAssertion returns the form fields of RFC 7523 private_key_jwt authentication as clientID.
func clientAssertion(t *testing.T, clientID, kid string, key *ecdsa.PrivateKey, audience string) url.Values {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{Issuer: clientID, Subject: clientID,
		Audience: jwt.ClaimStrings{audience}, ID: oauth2.GenerateVerifier(), IssuedAt: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))})
	tok.Header["kid"] = kid
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion": {signed}, "client_id": {clientID}}
}

// redact drops token values from a token answer, for error messages.
func redact(body map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range body {
		if strings.HasSuffix(k, "_token") {
			v = "…"
		}
		out[k] = v
	}
	return out
}

func str(v any) string { s, _ := v.(string); return s }

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// portString returns a loopback port that nothing listens on, as a redirect URI's.
func portString(t *testing.T) string {
	t.Helper()
	return strconv.Itoa(FreePort(t))
}
