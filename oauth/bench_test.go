package oauth

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// bench is one authorization server, one MCP server and a scripted browser, all real.
type bench struct {
	as      *testbed.AuthServer
	mcp     *testbed.MCPServer
	browser *testbed.Browser
	client  *Client
}

type benchOptions struct {
	as      testbed.AuthServerOptions
	mcp     testbed.MCPServerOptions
	browser testbed.BrowserOptions
	cfg     Config
	ts      bool // the TypeScript SDK server instead of the Go one
}

func newBench(t *testing.T, o benchOptions) *bench {
	t.Helper()
	b := &bench{as: testbed.NewAuthServer(t, o.as)}
	o.mcp.Issuer = b.as.Issuer
	if o.mcp.AdvertiseAS == "" && b.as.AdvertisedIssuer != b.as.Issuer {
		o.mcp.AdvertiseAS = b.as.AdvertisedIssuer // the profile's advertised issuer (Entra, Atlassian, Slack)
	}
	if b.as.Profile == testbed.ProfileGitHub {
		o.mcp.Opaque = true // GitHub's tokens are opaque
	}
	if o.mcp.Opaque {
		o.mcp.IntrospectionClientID, o.mcp.IntrospectionClientSecret = b.as.IntrospectionClient()
	}
	if o.mcp.RequiredScopes == nil {
		// oidc-provider refuses an authorization that grants no resource scope, and a server that
		// requires none advertises none, so every bench server requires one.
		o.mcp.RequiredScopes = []string{"mcp:read"}
	}
	if o.ts {
		b.mcp = testbed.TSMCPServer(t, o.mcp)
	} else {
		b.mcp = testbed.GoMCPServer(t, o.mcp)
	}
	if b.as.Profile != testbed.ProfileDefault {
		b.as.SetResource(t, b.mcp.Resource) // the audience profiles choose without `resource`
	}
	b.browser = testbed.NewBrowser(t, o.browser)
	if o.cfg.Opener == nil {
		o.cfg.Opener = b.browser
	}
	if o.cfg.SignInTimeout == 0 {
		o.cfg.SignInTimeout = 30 * time.Second
	}
	var err error
	if b.client, err = New(o.cfg); err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

// probe probes the bench's MCP server and requires an OAuth sign-in verdict.
func (b *bench) probe(t *testing.T) *Probe {
	t.Helper()
	p, err := b.client.Probe(t.Context(), b.mcp.URL)
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if p.Requirement != OAuthSignIn {
		t.Fatalf("Probe = %v (%s), want OAuthSignIn", p.Requirement, p.Reason)
	}
	return p
}

// signIn probes and signs in, failing the test on error.
func (b *bench) signIn(t *testing.T, opts SignInOptions) (Token, Grant) {
	t.Helper()
	tok, g, err := b.client.SignIn(t.Context(), b.probe(t), opts)
	if err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	return tok, g
}

// initialize sends an MCP initialize with the access token and returns the status and challenge.
func mcpInitialize(t *testing.T, serverURL, accessToken string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, serverURL, strings.NewReader(initialize))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("initialize: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header
}

// requireAccepted checks the MCP server accepts the token.
func requireAccepted(t *testing.T, serverURL string, tok Token) {
	t.Helper()
	if status, _ := mcpInitialize(t, serverURL, tok.AccessToken); status != http.StatusOK {
		t.Fatalf("MCP server answered %d to the signed-in token, want 200", status)
	}
}

// fakeClock is a clock whose waits pass at once and move it forward.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After advances the clock by d and fires after a token real delay, so a polling loop still yields.
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.waits = append(c.waits, d)
	now := c.now
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	time.AfterFunc(10*time.Millisecond, func() { ch <- now })
	return ch
}

func (c *fakeClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// testbedScopes makes MCP server options requiring scopes.
func testbedScopes(s ...string) testbed.MCPServerOptions {
	return testbed.MCPServerOptions{RequiredScopes: s}
}

func itoa(i int) string { return strconv.Itoa(i) }

// registerByHand registers a confidential client with a fixed loopback redirect port, as a user would
// in an IdP's console, and returns what the user would type into authkeeper.
func registerByHand(t *testing.T, as *testbed.AuthServer, port int, method AuthMethod) StaticClient {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"client_name":                "by hand",
		"redirect_uris":              []string{"http://127.0.0.1:" + itoa(port) + "/callback"},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": string(method),
		"application_type":           "native",
	})
	resp, err := http.Post(as.RegistrationURL, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("register by hand: %v", err)
	}
	defer resp.Body.Close()
	var r struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.ID == "" || r.Secret == "" {
		t.Fatalf("register by hand: %d %v %+v", resp.StatusCode, err, r)
	}
	return StaticClient{ID: r.ID, Secret: r.Secret, AuthMethod: method, RedirectPort: port}
}
