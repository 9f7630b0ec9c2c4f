package testbed

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBenchFoundationSignInCallBothServersThenSee401AfterExpiry is the bench's end-to-end check: a real
// PKCE login against oidc-provider through the scripted browser, a tool call on the Go SDK and the
// TypeScript SDK servers with the token it yields, and — once the short-lived token has expired — a 401
// carrying a Bearer WWW-Authenticate challenge from both.
func TestBenchFoundationSignInCallBothServersThenSee401AfterExpiry(t *testing.T) {
	as := NewAuthServer(t, AuthServerOptions{AccessTokenTTL: 3 * time.Second})
	type run struct {
		name string
		srv  *MCPServer
		tok  mcpToken
	}
	var runs []run
	for _, impl := range mcpImpls {
		srv := impl.start(t, MCPServerOptions{Issuer: as.Issuer})
		tok := issueMCPToken(t, as, srv.URL, "mcp:read")
		cs := mcpConnect(t, srv.URL, tok.AccessToken, nil)
		if got := mcpCall(t, cs, "echo", map[string]any{"text": "hello " + impl.name}); got != "hello "+impl.name {
			t.Fatalf("%s: echo = %q", impl.name, got)
		}
		runs = append(runs, run{impl.name, srv, tok})
	}
	for _, r := range runs {
		time.Sleep(time.Until(r.tok.Expiry.Add(1100 * time.Millisecond)))
		resp := mcpInitialize(t, r.srv.URL, r.tok.AccessToken)
		if resp.status != http.StatusUnauthorized {
			t.Errorf("%s: expired token got %d, want 401", r.name, resp.status)
			continue
		}
		challenge := resp.challenge
		if !strings.HasPrefix(challenge, "Bearer") || !strings.Contains(challenge, "resource_metadata=") {
			t.Errorf("%s: WWW-Authenticate = %q, want a Bearer challenge naming resource_metadata", r.name, challenge)
		}
	}
}
