package app

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/oauth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestGitHubStyleTokenWithoutExpiryServesUntilRefusedThenAsksOnce: against the bench AS in its GitHub
// profile (a pre-registered confidential client, opaque tokens answered without expires_in or a
// refresh token), `authkeeper add --client-id` signs in; status says "no expiry" and lists the quirk
// (and `status --json` carries it), nothing is scheduled, and calls work. Once the AS revokes the
// token, the server (introspecting each request) refuses it: the agent gets sign_in_required, the
// user is told once (one needs_sign_in, no "revoked"), and nothing asks the AS for a refresh. A
// `login` brings calls back.
func TestGitHubStyleTokenWithoutExpiryServesUntilRefusedThenAsksOnce(t *testing.T) {
	b := newBench(t, benchOptions{Home: true})
	gh := testbed.NewAuthServer(t, testbed.AuthServerOptions{Profile: testbed.ProfileGitHub})
	id, secret := gh.IntrospectionClient()
	srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: gh.Issuer, AdvertiseAS: gh.AdvertisedIssuer,
		RequiredScopes: []string{"mcp:read"}, Opaque: true, IntrospectionClientID: id, IntrospectionClientSecret: secret})
	gh.SetResource(t, srv.URL)
	client := gh.Clients[0]
	_, events, cancel := b.eng.Subscribe()
	defer cancel()
	code, out, errOut := runCLIWith(t, "", map[string]string{envClientSecret: client.Secret},
		"add", srv.URL, "--name", "gh", "--client-id", client.ID, "--scope", "mcp:read")
	if code != 0 {
		t.Fatalf("add: exit %d\n%s%s", code, out, errOut)
	}
	assertNoSecrets(t, "add output", out+errOut, client.Secret)
	st := serverStatus(t, b.eng, "gh")
	if !st.NoExpiry || !st.Next.IsZero() || st.State != engine.StateFresh || !hasQuirk(st.Quirks, oauth.QuirkNoExpiry) {
		t.Fatalf("status %s no_expiry=%t next=%v quirks=%v; want fresh, no expiry, nothing planned, the quirk listed",
			st.State, st.NoExpiry, st.Next, st.Quirks)
	}
	_, out, _ = runCLIWith(t, "", nil, "status")
	if !strings.Contains(out, "no expiry") || !strings.Contains(out, "warning: "+oauth.QuirkNoExpiry.Describe()) {
		t.Errorf("`authkeeper status` does not say no expiry with its warning:\n%s", out)
	}
	_, out, _ = runCLIWith(t, "", nil, "status", "--json")
	var h engine.Health
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatal(err)
	}
	for _, sh := range h.Servers {
		if sh.Name == "gh" && (!sh.NoExpiry || !hasQuirk(sh.Quirks, oauth.QuirkNoExpiry) || len(sh.Warnings) == 0) {
			t.Errorf("status --json: %+v, want no_expiry with the quirk and its warning", sh)
		}
	}

	ctx, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: b.eng.ProxyEndpoint("gh")}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cs.Close()
	if got, err := proxyEcho(ctx, cs, "hello"); err != nil || got != "hello" {
		t.Fatalf("call: %q, %v", got, err)
	}
	tok, err := b.eng.Token(ctx, "gh")
	if err != nil {
		t.Fatal(err)
	}
	gh.Revoke(t, tok)
	for i := range 5 {
		_, err := proxyEcho(ctx, cs, "after revocation")
		we, d := proxyStructured(t, err)
		if we.Code != proxy.CodeAuthFailure || d.Subtype != proxy.SubtypeSignInRequired || d.Retryable {
			t.Fatalf("call %d after revocation: %d %+v, want the non-retryable sign_in_required", i, we.Code, d)
		}
	}
	waitEventFor(t, events, engine.EventNeedsSignIn, "gh", 5*time.Second)
	if n := auditKinds(t, b.paths, engine.EventNeedsSignIn, "gh"); n != 1 {
		t.Errorf("%d needs_sign_in events, want 1", n)
	}
	if n := auditKinds(t, b.paths, engine.EventRevoked, "gh"); n != 0 {
		t.Errorf("%d revoked events, want none: a token without expiry that is refused needs a sign-in", n)
	}
	if n := gh.TokenRequests(t, "refresh_token"); n != 0 {
		t.Errorf("%d refresh requests for a grant without a refresh token", n)
	}
	if code, out, errOut := runCLIWith(t, "", nil, "login", "gh"); code != 0 {
		t.Fatalf("login: exit %d\n%s%s", code, out, errOut)
	}
	if got, err := proxyEcho(ctx, cs, "signed in"); err != nil || got != "signed in" {
		t.Errorf("call after signing in again: %q, %v", got, err)
	}
}
