package testbed

import (
	"cmp"
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// AuthServerOptions configures NewAuthServer. The zero value is a server issuing one-hour JWT access
// tokens and rotating 14-day refresh tokens.
type AuthServerOptions struct {
	// AccessTokenTTL is the lifetime of access tokens, rounded up to whole seconds. Default 1h
	// (ten years under ProfileGitHub, whose tokens do not expire).
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the lifetime of each refresh token, rounded up to whole seconds. Default 14 days.
	RefreshTokenTTL time.Duration
	// Opaque issues opaque, introspectable access tokens instead of RFC 9068 JWTs. Default false;
	// always true under ProfileGitHub, refused under ProfileEntra.
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
	// Profile makes the server reproduce a hosted provider's documented behaviour (see Profile and
	// node/as-profiles.mjs). Default ProfileDefault, the plain bench AS.
	Profile Profile
	// StaticClients are clients pre-registered at the AS, next to the introspection client.
	// Default: the profile's own — one for ProfileEntra, ProfileGitHub and ProfileSlack, none
	// otherwise (AuthServer.Clients lists them with their defaults filled in).
	StaticClients []StaticClient
	// Resource is the protected resource (an MCP server's URL) that profile-chosen audiences name:
	// ProfileEntra binds tokens asked for with AppScope to it, and ProfileGitHub binds tokens to it
	// when the client sends no `resource`. An MCP server usually starts after its AS: SetResource
	// sets it then. Default none.
	Resource string
	// IssuerOrigin, e.g. "http://127.0.0.1:PORT", makes the issuer — and every URL the server
	// generates — name another origin, that of a front which reverse-proxies the AS's paths (see
	// AuthServer.ReverseProxy), while the server listens on its own port (AuthServer.ListenURL).
	// Default: the server's own origin.
	IssuerOrigin string
}

// AuthServer is an oidc-provider authorization server run by node on 127.0.0.1 (see node/as.mjs):
// open dynamic client registration, PKCE S256, RFC 9207 iss, RFC 8707 resource indicators for any
// loopback resource, refresh tokens with rotation and reuse detection, device flow, revocation and
// introspection, the client_credentials grant (client secrets and private_key_jwt), pre-registered
// clients, its own login and consent pages (any user name and password), and test hooks. A Profile
// changes some of this to reproduce a hosted provider (see node/as-profiles.mjs).
// Safe for concurrent use.
type AuthServer struct {
	// Issuer is the issuer identifier, e.g. http://127.0.0.1:41234 or http://127.0.0.1:41234/tenant1:
	// the `iss` of its tokens and the `issuer` of the metadata at Issuer's own well-known URLs.
	Issuer string
	// AdvertisedIssuer is the authorization server an MCP server's protected-resource metadata
	// should name: Issuer, except under ProfileEntra (http://127.0.0.1:PORT/organizations/v2.0,
	// whose metadata names the template issuer http://127.0.0.1:PORT/{tenantid}/v2.0) and under
	// ProfileAtlassian and ProfileSlack (the server root, whose metadata names Issuer).
	AdvertisedIssuer string
	// ListenURL is where the server listens, http://127.0.0.1:PORT: Issuer's origin unless
	// AuthServerOptions.IssuerOrigin was set, in which case a front must forward to it.
	ListenURL string
	// Profile is AuthServerOptions.Profile.
	Profile Profile
	// Endpoints of the server, derived from Issuer (they are fixed by oidc-provider's routes).
	// RegistrationURL is empty under profiles without DCR. RevocationURL and IntrospectionURL are
	// served under every profile (Revoke and the bench's resource servers use them), even where the
	// profile's metadata does not advertise them (Entra, GitHub, Slack).
	AuthURL, TokenURL, RegistrationURL, DeviceAuthURL, RevocationURL, IntrospectionURL, JWKSURL string
	// Clients are the pre-registered clients (AuthServerOptions.StaticClients or the profile's own)
	// with their defaults filled in, secrets included.
	Clients []StaticClient
	// TenantID, AppID and AppScope are ProfileEntra's tenant GUID, the GUID of the app registration
	// that stands for AuthServerOptions.Resource, and the scope a client asks for that resource
	// with: "api://<AppID>/.default" (with offline_access for a refresh token). Empty otherwise.
	TenantID, AppID, AppScope string

	root        string // ListenURL: where the test hooks live
	prefix      string // Issuer's path
	routes      map[string]string
	cfg         map[string]any // the configuration of every run, keys included; guarded by mu
	env         []string       // extra environment of every run
	cimd        *cimdHost      // ProfileCIMD's https host of client metadata documents
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
	origin := root
	if opts.IssuerOrigin != "" {
		origin = opts.IssuerOrigin
	}
	a := &AuthServer{Issuer: origin + opts.IssuerPath, ListenURL: root, Profile: opts.Profile, root: root,
		prefix: opts.IssuerPath, routes: routesOf(opts.Profile), adminID: "resource-server", adminSecret: randomString(t)}
	a.AdvertisedIssuer = a.Issuer
	switch opts.Profile {
	case ProfileEntra:
		a.AdvertisedIssuer = origin + "/organizations/v2.0"
	case ProfileAtlassian, ProfileSlack:
		a.AdvertisedIssuer = origin
	}
	a.AuthURL = a.Issuer + a.routes["authorization"]
	a.TokenURL = a.Issuer + a.routes["token"]
	if opts.Profile.registration() {
		a.RegistrationURL = a.Issuer + a.routes["registration"]
	}
	a.DeviceAuthURL = a.Issuer + a.routes["device_authorization"]
	a.RevocationURL = a.Issuer + a.routes["revocation"]
	a.IntrospectionURL = a.Issuer + a.routes["introspection"]
	a.JWKSURL = a.Issuer + a.routes["jwks"]

	clients := opts.StaticClients
	if len(clients) == 0 {
		clients = defaultClients(t, opts.Profile)
	}
	var meta []any
	for i, c := range clients {
		c = c.resolve(t, opts.Profile, i)
		a.Clients = append(a.Clients, c)
		meta = append(meta, c.metadata())
	}
	a.cfg = map[string]any{
		"issuer":              a.Issuer,
		"listenPort":          portOf(root),
		"profile":             string(opts.Profile),
		"routes":              a.routes,
		"jwks":                signingKeys(t),
		"accessTokenTTL":      seconds(opts.AccessTokenTTL),
		"refreshTokenTTL":     seconds(opts.RefreshTokenTTL),
		"opaque":              opts.Opaque,
		"noRotation":          opts.NoRotation,
		"scopes":              opts.Scopes,
		"introspectionClient": map[string]string{"id": a.adminID, "secret": a.adminSecret},
		"staticClients":       meta,
		"resource":            opts.Resource,
	}
	if opts.DeviceInterval > 0 {
		a.cfg["deviceInterval"] = seconds(opts.DeviceInterval)
	}
	if opts.Profile == ProfileEntra {
		a.TenantID, a.AppID = strings.Split(opts.IssuerPath, "/")[1], newGUID(t)
		a.AppScope = "api://" + a.AppID + "/.default"
		a.cfg["entra"] = map[string]string{"tenantId": a.TenantID, "appScope": a.AppScope}
	}
	if opts.Profile == ProfileCIMD {
		a.cimd = newCIMDHost(t)
		a.cfg["cimdOrigin"] = a.cimd.origin
		a.env = append(a.env, "NODE_EXTRA_CA_CERTS="+a.cimd.caFile)
	}
	a.launch(t)
	return a
}

// routesOf returns oidc-provider's route paths for p, which name the endpoints of hooks and faults.
func routesOf(p Profile) map[string]string {
	r := map[string]string{
		"authorization": "/auth", "token": "/token", "registration": "/reg",
		"device_authorization": "/device/auth", "code_verification": "/device",
		"revocation": "/token/revocation", "introspection": "/token/introspection",
		"jwks": "/jwks", "userinfo": "/me",
	}
	if p == ProfileLegacy {
		// MCP 2025-03-26 §2.3.3: without metadata a client uses these paths on the server's origin.
		r["authorization"], r["registration"] = "/authorize", "/register"
	}
	return r
}

func portOf(root string) int {
	u, _ := url.Parse(root)
	n, _ := strconv.Atoi(u.Port())
	return n
}

// SetResource sets AuthServerOptions.Resource, for this run and every later one (Restart).
func (a *AuthServer) SetResource(t testing.TB, resource string) {
	t.Helper()
	a.mu.Lock()
	a.cfg["resource"] = resource
	a.mu.Unlock()
	a.hook(t, http.MethodPost, "/__testbed/resource", map[string]string{"resource": resource}, nil)
}

func (o AuthServerOptions) withDefaults(t testing.TB) AuthServerOptions {
	t.Helper()
	if o.AccessTokenTTL < 0 || o.RefreshTokenTTL < 0 || o.DeviceInterval < 0 {
		t.Fatal("AuthServerOptions: durations must not be negative")
	}
	if !slices.Contains(profiles, o.Profile) {
		t.Fatalf("AuthServerOptions.Profile %q is unknown", o.Profile)
	}
	if o.AccessTokenTTL == 0 {
		o.AccessTokenTTL = time.Hour
		if o.Profile == ProfileGitHub {
			// GitHub OAuth app tokens do not expire; the AS keeps them long so introspection
			// keeps accepting them.
			o.AccessTokenTTL = 10 * 365 * 24 * time.Hour
		}
	}
	if o.RefreshTokenTTL == 0 {
		o.RefreshTokenTTL = 14 * 24 * time.Hour
	}
	if len(o.Scopes) == 0 {
		o.Scopes = []string{"mcp:read", "mcp:write", "mcp:admin"}
	}
	switch o.Profile {
	case ProfileEntra:
		if o.IssuerPath != "" {
			t.Fatal("AuthServerOptions.IssuerPath: ProfileEntra sets its own, /<tenant>/v2.0")
		}
		if o.Opaque {
			t.Fatal("AuthServerOptions.Opaque: Entra access tokens are JWTs")
		}
		o.IssuerPath = "/" + newGUID(t) + "/v2.0"
	case ProfileAtlassian:
		o.IssuerPath = cmp.Or(o.IssuerPath, "/atl")
	case ProfileSlack:
		o.IssuerPath = cmp.Or(o.IssuerPath, "/slack")
	case ProfileGitHub:
		o.IssuerPath = cmp.Or(o.IssuerPath, "/login/oauth")
		o.Opaque = true
	}
	if o.IssuerPath != "" && (!strings.HasPrefix(o.IssuerPath, "/") || strings.HasSuffix(o.IssuerPath, "/")) {
		t.Fatalf("AuthServerOptions.IssuerPath %q must start and not end with /", o.IssuerPath)
	}
	if o.IssuerOrigin != "" {
		u, err := url.Parse(o.IssuerOrigin)
		if err != nil || u.Scheme != "http" || !isLoopback(u) || u.Port() == "" || u.Path != "" || u.RawQuery != "" {
			t.Fatalf("AuthServerOptions.IssuerOrigin %q must be http://<loopback>:PORT", o.IssuerOrigin)
		}
	}
	return o
}

// launch starts a new node process with the fixture's configuration and waits for it to listen.
func (a *AuthServer) launch(t testing.TB) {
	t.Helper()
	dir := NodeDir(t)
	cmd := exec.Command("node", filepath.Join(dir, "as.mjs"))
	cmd.Dir = dir
	a.mu.Lock()
	config, err := json.Marshal(a.cfg)
	a.mu.Unlock()
	if err != nil {
		t.Fatalf("auth server config: %v", err)
	}
	cmd.Env = append(append(cmd.Environ(), a.env...), "AUTHKEEPER_AS_CONFIG="+string(config))
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
// issued before still verify, but every dynamically registered client, grant and token is
// forgotten, and so are faults, counters and events. Static clients and the Resource set by
// SetResource are kept.
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
