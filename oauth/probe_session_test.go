package oauth

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// TestProbeFindsAuthBehindAnOpenInitialize pins issue 11 point 9 on both SDKs: a server that answers
// initialize and tools/list to anyone and wants a token for tools/call is an OAuth server. The probe
// calls only a tool that cannot exist.
func TestProbeFindsAuthBehindAnOpenInitialize(t *testing.T) {
	for _, ts := range []bool{false, true} {
		t.Run(map[bool]string{false: "GoSDK", true: "TSSDK"}[ts], func(t *testing.T) {
			b := newBench(t, benchOptions{ts: ts, mcp: testbed.MCPServerOptions{RequiredScopes: []string{"mcp:read"}, ProtectedMethods: []string{"tools/call"}}})
			if status, _ := mcpInitialize(t, b.mcp.URL, ""); status != http.StatusOK {
				t.Fatalf("the bench server answered %d to an anonymous initialize, want 200", status)
			}
			p := b.probe(t)
			if !strings.Contains(p.Reason, "tools/call") || p.AuthServer.Issuer != b.as.Issuer || !slices.Contains(p.Scopes, "mcp:read") {
				t.Errorf("probe = %q, issuer %q, scopes %q", p.Reason, p.AuthServer.Issuer, p.Scopes)
			}
			tok, _, err := b.client.SignIn(t.Context(), p, SignInOptions{})
			if err != nil {
				t.Fatalf("SignIn: %v", err)
			}
			requireAccepted(t, b.mcp.URL, tok)
		})
	}
}

// TestStepUpNeverRepeatsAScope: the Go SDK's 403 challenge for tools/call names every scope the call
// needs, those the token holds included; the step-up request names each scope once.
func TestStepUpNeverRepeatsAScope(t *testing.T) {
	b := newBench(t, benchOptions{mcp: testbed.MCPServerOptions{RequiredScopes: []string{"mcp:read"}, ToolCallScopes: []string{"mcp:write"}}})
	tok, g := b.signIn(t, SignInOptions{Scopes: []string{"mcp:read"}})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, b.mcp.URL, strings.NewReader(
		`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	scopes, err := b.client.StepUpScopes(resp.StatusCode, resp.Header, append(slices.Clone(tok.Scopes), tok.Scopes...))
	if err != nil {
		t.Fatalf("StepUpScopes(%d, %q): %v", resp.StatusCode, resp.Header.Values("WWW-Authenticate"), err)
	}
	tok2, _, err := b.client.SignIn(t.Context(), b.probe(t), SignInOptions{Previous: &g, Scopes: scopes})
	if err != nil {
		t.Fatalf("step-up SignIn: %v", err)
	}
	requireAccepted(t, b.mcp.URL, tok2)
	opened := b.browser.Opened()
	got := testbed.RequestedScopes(opened[len(opened)-1])
	if !slices.Contains(got, "mcp:write") || len(unionScopes(got)) != len(got) {
		t.Errorf("step-up requested %q: want mcp:write and no scope twice", got)
	}
}

func TestStepUpScopesDeduplicates(t *testing.T) {
	c, _ := New(Config{})
	h := http.Header{"Www-Authenticate": {`Bearer error="insufficient_scope", scope="mcp:basic mcp:basic mcp:write"`}}
	got, err := c.StepUpScopes(http.StatusForbidden, h, []string{"mcp:basic", "mcp:basic"})
	if err != nil || !slices.Equal(got, []string{"mcp:basic", "mcp:write"}) {
		t.Errorf("StepUpScopes = %q, %v; want [mcp:basic mcp:write]", got, err)
	}
	if _, err := c.StepUpScopes(http.StatusForbidden, h, []string{"mcp:write", "mcp:basic"}); !errors.Is(err, ErrStepUpExhausted) {
		t.Errorf("nothing new: %v, want ErrStepUpExhausted", err)
	}
}
