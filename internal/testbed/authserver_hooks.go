package testbed

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Fault makes the server misbehave on the next requests to one endpoint. Faults queue per endpoint
// in the order armed; each applies to Count requests.
type Fault struct {
	// Endpoint is an oidc-provider route name — "authorization", "token", "registration",
	// "device_authorization", "code_verification", "revocation", "introspection", "jwks",
	// "userinfo" — or "oauth-authorization-server" / "openid-configuration" for every location of that
	// metadata document, or else an exact request path such as "/tenant1/token". Required.
	Endpoint string
	// Status is the HTTP status to answer with. Default 0: pass the request on after Delay.
	Status int
	// RetryAfter is sent as the Retry-After header when set, e.g. "2".
	RetryAfter string
	// Body is served instead of the default, a JSON OAuth error (temporarily_unavailable for 429 and
	// 503, server_error for other 5xx, invalid_request otherwise) — e.g. "{not json" for a malformed one.
	Body string
	// ContentType of the response. Default application/json.
	ContentType string
	// Delay holds the request this long before answering or passing it on (a slow AS). Default none.
	Delay time.Duration
	// Count is how many requests the fault applies to. Default 1; negative: until ClearFaults.
	Count int
}

// Fault arms f.
func (a *AuthServer) Fault(t testing.TB, f Fault) {
	t.Helper()
	if f.Endpoint == "" {
		t.Fatal("Fault.Endpoint is required")
	}
	if f.Count == 0 {
		f.Count = 1
	}
	body := map[string]any{"endpoint": f.Endpoint, "count": f.Count, "delayMs": f.Delay.Milliseconds()}
	if f.Status != 0 {
		body["status"] = f.Status
	}
	if f.RetryAfter != "" {
		body["retryAfter"] = f.RetryAfter
	}
	if f.Body != "" {
		body["body"] = f.Body
	}
	if f.ContentType != "" {
		body["contentType"] = f.ContentType
	}
	a.hook(t, http.MethodPost, "/__testbed/faults", body, nil)
}

// ClearFaults disarms every pending fault.
func (a *AuthServer) ClearFaults(t testing.TB) {
	t.Helper()
	a.hook(t, http.MethodDelete, "/__testbed/faults", nil, nil)
}

// AuthServerStats are the server's counters since its current run started.
type AuthServerStats struct {
	// TokenRequests counts token-endpoint requests by grant_type ("(none)" when absent), faulted
	// ones included.
	TokenRequests map[string]int `json:"tokenRequests"`
	// TokenRequestTimes holds, by grant_type, when each token request arrived, in milliseconds since
	// the Unix epoch on the machine's clock (the AS runs on the same machine as the test).
	TokenRequestTimes map[string][]int64 `json:"tokenRequestTimes"`
	// Requests counts requests by endpoint (the names of Fault.Endpoint, or the path), faulted ones
	// included.
	Requests map[string]int `json:"requests"`
	// Events lists notable events in order, never with token values: "client.registered client=ID
	// type=native auth=none", "refresh_token.rotated client=ID", "refresh_token.reused client=ID",
	// "grant.revoked client=CALLER via=token" (reuse detection) or "via=revocation" (RFC 7009; CALLER
	// is resource-server for Revoke), "access_token.revoked client=ID", "refresh_token.revoked
	// client=ID", "device.authorization client=ID".
	Events []string `json:"events"`
}

// Stats returns the server's counters and events.
func (a *AuthServer) Stats(t testing.TB) AuthServerStats {
	t.Helper()
	var s AuthServerStats
	a.hook(t, http.MethodGet, "/__testbed/stats", nil, &s)
	return s
}

// TokenRequests returns how many token requests of grantType the server has received.
func (a *AuthServer) TokenRequests(t testing.TB, grantType string) int {
	t.Helper()
	return a.Stats(t).TokenRequests[grantType]
}

// TokenRequestTimes returns when each token request of grantType arrived, in order.
func (a *AuthServer) TokenRequestTimes(t testing.TB, grantType string) []time.Time {
	t.Helper()
	var out []time.Time
	for _, ms := range a.Stats(t).TokenRequestTimes[grantType] {
		out = append(out, time.UnixMilli(ms))
	}
	return out
}

// Events returns the server's notable events (see AuthServerStats.Events).
func (a *AuthServer) Events(t testing.TB) []string {
	t.Helper()
	return a.Stats(t).Events
}

// Revoke revokes token as an administrator would, through the RFC 7009 endpoint with the
// introspection client's credentials: an access token alone, or a refresh token with its whole grant.
// JWT access tokens cannot be revoked (oidc-provider answers unsupported_token_type) and fail the test.
func (a *AuthServer) Revoke(t testing.TB, token string) {
	t.Helper()
	// Straight to the listener: with IssuerOrigin, RevocationURL names a front that may be down.
	req, err := http.NewRequest(http.MethodPost, a.root+a.prefix+a.routes["revocation"], strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(a.adminID), url.QueryEscape(a.adminSecret)) // RFC 6749 §2.3.1
	a.do(t, req, nil)
}

// hook calls a test hook of the current run.
func (a *AuthServer) hook(t testing.TB, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatalf("auth server hook %s: %v", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.root+path, body)
	if err != nil {
		t.Fatalf("auth server hook %s: %v", path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	a.do(t, req, out)
}

// do sends req, fails the test unless it succeeds, and decodes a JSON answer into out if non-nil.
// Error messages carry the status and the server's body, never the request.
func (a *AuthServer) do(t testing.TB, req *http.Request, out any) {
	t.Helper()
	resp, err := hookClient.Do(req)
	if err != nil {
		t.Fatalf("auth server %s: %v", req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("auth server %s: %v", req.URL.Path, err)
	}
	if resp.StatusCode/100 != 2 {
		t.Fatalf("auth server %s: %s: %s", req.URL.Path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("auth server %s: %v", req.URL.Path, err)
		}
	}
}

var hookClient = &http.Client{Timeout: 30 * time.Second}
