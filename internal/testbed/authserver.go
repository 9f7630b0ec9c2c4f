package testbed

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// AuthServerOptions configures NewAuthServer. The zero value is a server issuing one-hour JWT access
// tokens and rotating 14-day refresh tokens.
type AuthServerOptions struct {
	// AccessTokenTTL is the lifetime of access tokens, rounded up to whole seconds. Default 1h.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the lifetime of each refresh token, rounded up to whole seconds. Default 14 days.
	RefreshTokenTTL time.Duration
	// Opaque issues opaque, introspectable access tokens instead of RFC 9068 JWTs. Default false.
	Opaque bool
	// NoRotation keeps the same refresh token across refreshes. Default false: every refresh returns a
	// new refresh token, and replaying a spent one revokes the whole grant.
	NoRotation bool
	// Scopes are the scopes of every loopback resource. Default mcp:read mcp:write mcp:admin; openid and
	// offline_access are always offered as well.
	Scopes []string
	// IssuerPath mounts the server under a path, e.g. "/tenant1", so the issuer is
	// http://127.0.0.1:PORT/tenant1. Default none.
	IssuerPath string
	// DeviceInterval, when set, is sent as `interval` in device authorization responses (whole
	// seconds). Default unset: RFC 8628 clients then poll every 5 s.
	DeviceInterval time.Duration
}

// AuthServer is an oidc-provider authorization server run by node on 127.0.0.1 (see node/as.mjs):
// open dynamic client registration, PKCE S256, RFC 9207 iss, RFC 8707 resource indicators for any
// loopback resource, refresh tokens with rotation and reuse detection, device flow, revocation and
// introspection, its own login and consent pages (any user name and password), and test hooks.
// Safe for concurrent use.
type AuthServer struct {
	// Issuer is the issuer identifier, e.g. http://127.0.0.1:41234 or http://127.0.0.1:41234/tenant1.
	Issuer string
	// Endpoints of the server, derived from Issuer (they are fixed by oidc-provider's routes).
	AuthURL, TokenURL, RegistrationURL, DeviceAuthURL, RevocationURL, IntrospectionURL, JWKSURL string

	root        string // scheme://host:port, where the test hooks live
	config      []byte // the JSON configuration of every run, keys included
	adminID     string
	adminSecret string

	mu    sync.Mutex
	runs  []*Process
	stdin io.WriteCloser // of the current run
	seq   int            // numbers "down"/"up" commands so each acknowledgement is unique
}

// NewAuthServer starts an authorization server on a free port and waits until it listens. It is
// stopped by t.Cleanup; if the test failed, the output of every run is logged.
func NewAuthServer(t testing.TB, opts AuthServerOptions) *AuthServer {
	t.Helper()
	opts = opts.withDefaults(t)
	root := fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	a := &AuthServer{Issuer: root + opts.IssuerPath, root: root, adminID: "resource-server", adminSecret: randomString(t)}
	a.AuthURL = a.Issuer + "/auth"
	a.TokenURL = a.Issuer + "/token"
	a.RegistrationURL = a.Issuer + "/reg"
	a.DeviceAuthURL = a.Issuer + "/device/auth"
	a.RevocationURL = a.Issuer + "/token/revocation"
	a.IntrospectionURL = a.Issuer + "/token/introspection"
	a.JWKSURL = a.Issuer + "/jwks"

	cfg := map[string]any{
		"issuer":              a.Issuer,
		"jwks":                signingKeys(t),
		"accessTokenTTL":      seconds(opts.AccessTokenTTL),
		"refreshTokenTTL":     seconds(opts.RefreshTokenTTL),
		"opaque":              opts.Opaque,
		"noRotation":          opts.NoRotation,
		"scopes":              opts.Scopes,
		"introspectionClient": map[string]string{"id": a.adminID, "secret": a.adminSecret},
	}
	if opts.DeviceInterval > 0 {
		cfg["deviceInterval"] = seconds(opts.DeviceInterval)
	}
	var err error
	if a.config, err = json.Marshal(cfg); err != nil {
		t.Fatalf("auth server config: %v", err)
	}
	a.launch(t)
	return a
}

func (o AuthServerOptions) withDefaults(t testing.TB) AuthServerOptions {
	t.Helper()
	if o.AccessTokenTTL < 0 || o.RefreshTokenTTL < 0 || o.DeviceInterval < 0 {
		t.Fatal("AuthServerOptions: durations must not be negative")
	}
	if o.AccessTokenTTL == 0 {
		o.AccessTokenTTL = time.Hour
	}
	if o.RefreshTokenTTL == 0 {
		o.RefreshTokenTTL = 14 * 24 * time.Hour
	}
	if len(o.Scopes) == 0 {
		o.Scopes = []string{"mcp:read", "mcp:write", "mcp:admin"}
	}
	if o.IssuerPath != "" && (!strings.HasPrefix(o.IssuerPath, "/") || strings.HasSuffix(o.IssuerPath, "/")) {
		t.Fatalf("AuthServerOptions.IssuerPath %q must start and not end with /", o.IssuerPath)
	}
	return o
}

// launch starts a new node process with the fixture's configuration and waits for it to listen.
func (a *AuthServer) launch(t testing.TB) {
	t.Helper()
	dir := NodeDir(t)
	cmd := exec.Command("node", filepath.Join(dir, "as.mjs"))
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "AUTHKEEPER_AS_CONFIG="+string(a.config))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("auth server stdin: %v", err)
	}
	a.mu.Lock()
	name := "authserver"
	if n := len(a.runs); n > 0 {
		name = fmt.Sprintf("authserver (run %d)", n+1)
	}
	a.mu.Unlock()
	p := StartProcess(t, name, cmd)
	p.WaitLine(t, "READY ", 20*time.Second)
	a.mu.Lock()
	a.runs = append(a.runs, p)
	a.stdin = stdin
	a.mu.Unlock()
}

// IntrospectionClient returns the credentials of the static confidential client that resource
// servers use for introspection (client_secret_basic). It may also revoke any client's tokens.
func (a *AuthServer) IntrospectionClient() (id, secret string) { return a.adminID, a.adminSecret }

// Stop closes the server's listener: connections are refused until Start. Clients, grants and tokens
// are kept, and so are the test hooks' state (which is unreachable meanwhile).
func (a *AuthServer) Stop(t testing.TB) { t.Helper(); a.command(t, "down", "DOWN") }

// Start listens again, on the same port, after Stop.
func (a *AuthServer) Start(t testing.TB) { t.Helper(); a.command(t, "up", "UP") }

func (a *AuthServer) command(t testing.TB, cmd, ack string) {
	t.Helper()
	a.mu.Lock()
	a.seq++
	n, p, stdin := a.seq, a.runs[len(a.runs)-1], a.stdin
	a.mu.Unlock()
	if _, err := fmt.Fprintf(stdin, "%s %d\n", cmd, n); err != nil {
		t.Fatalf("auth server %s: %v", cmd, err)
	}
	p.WaitLine(t, fmt.Sprintf("%s %d", ack, n), 10*time.Second)
}

// Restart replaces the server process by a new one on the same port with the same signing keys: JWTs
// issued before still verify, but every client, grant and token is forgotten, and so are faults,
// counters and events.
func (a *AuthServer) Restart(t testing.TB) {
	t.Helper()
	a.mu.Lock()
	p := a.runs[len(a.runs)-1]
	a.mu.Unlock()
	if err := p.Stop(); err != nil {
		t.Fatalf("stop auth server: %v", err)
	}
	a.launch(t)
}

// Output returns what every run of the server has written so far, oldest first.
func (a *AuthServer) Output() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var b strings.Builder
	for i, p := range a.runs {
		fmt.Fprintf(&b, "--- run %d ---\n%s", i+1, p.Output())
	}
	return b.String()
}

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
	req, err := http.NewRequest(http.MethodPost, a.RevocationURL, strings.NewReader(url.Values{"token": {token}}.Encode()))
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

// seconds converts d to whole seconds, rounding up, at least 1.
func seconds(d time.Duration) int64 {
	return max(1, int64((d+time.Second-1)/time.Second))
}

// signingKeys returns a fresh private JWKS with one RS256 key (oidc-provider needs RS256 for ID tokens).
func signingKeys(t testing.TB) map[string]any {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate signing key: %v", err)
	}
	b64 := func(i *big.Int) string { return base64.RawURLEncoding.EncodeToString(i.Bytes()) }
	jwk := map[string]string{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "bench-" + randomString(t)[:8],
		"n": b64(k.N), "e": b64(big.NewInt(int64(k.E))), "d": b64(k.D),
		"p": b64(k.Primes[0]), "q": b64(k.Primes[1]),
		"dp": b64(k.Precomputed.Dp), "dq": b64(k.Precomputed.Dq), "qi": b64(k.Precomputed.Qinv),
	}
	return map[string]any{"keys": []any{jwk}}
}

func randomString(t testing.TB) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
