package oauth

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

func TestRevokeKillsRefreshAndAccessTokens(t *testing.T) {
	b := newBench(t, benchOptions{as: testbed.AuthServerOptions{Opaque: true}, mcp: testbed.MCPServerOptions{Opaque: true}})
	tok, g := b.signIn(t, SignInOptions{})
	requireAccepted(t, b.mcp.URL, tok)

	// The access token alone (sign-out of a session whose refresh token is kept elsewhere).
	if err := b.client.Revoke(t.Context(), g, Token{AccessToken: tok.AccessToken}); err != nil {
		t.Fatalf("Revoke access token: %v", err)
	}
	if status, _ := mcpInitialize(t, b.mcp.URL, tok.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("MCP server answered %d to a revoked access token, want 401", status)
	}
	if ev := b.as.Events(t); !slices.ContainsFunc(ev, func(e string) bool { return strings.HasPrefix(e, "access_token.revoked") }) {
		t.Errorf("AS events %q lack access_token.revoked", ev)
	}

	// Then both, on a new grant (oidc-provider drops the grant with its access token): the refresh
	// token, and with it the grant, die.
	tok2, g := b.signIn(t, SignInOptions{})
	if err := b.client.Revoke(t.Context(), g, tok2); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if status, _ := mcpInitialize(t, b.mcp.URL, tok2.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("MCP server answered %d after revocation, want 401", status)
	}
	if _, _, err := b.client.Refresh(t.Context(), g, tok2.RefreshToken); !errors.Is(err, ErrReauthRequired) {
		t.Errorf("Refresh with a revoked refresh token = %v, want re-auth", err)
	}
	if ev := b.as.Events(t); !slices.ContainsFunc(ev, func(e string) bool {
		return strings.HasPrefix(e, "grant.revoked") && strings.HasSuffix(e, "via=revocation")
	}) {
		t.Errorf("AS events %q lack grant.revoked via=revocation", ev)
	}
	// Revoking again is harmless (RFC 7009 §2.2).
	if err := b.client.Revoke(t.Context(), g, tok2); err != nil {
		t.Errorf("second Revoke: %v", err)
	}
}

func TestRevokeJWTAccessTokenIsNotAnError(t *testing.T) {
	b := newBench(t, benchOptions{})
	tok, g := b.signIn(t, SignInOptions{})
	if err := b.client.Revoke(t.Context(), g, tok); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, _, err := b.client.Refresh(t.Context(), g, tok.RefreshToken); !errors.Is(err, ErrReauthRequired) {
		t.Errorf("Refresh after Revoke = %v, want re-auth", err)
	}
}

// TestStepUpWidensScopesToWhatTheServerDemands runs against both SDKs: a token with too little scope
// gets 403, StepUpScopes yields the union, and signing in with it satisfies the server.
func TestStepUpWidensScopesToWhatTheServerDemands(t *testing.T) {
	for _, ts := range []bool{false, true} {
		t.Run(map[bool]string{false: "GoSDK", true: "TSSDK"}[ts], func(t *testing.T) {
			b := newBench(t, benchOptions{ts: ts, mcp: testbed.MCPServerOptions{RequiredScopes: []string{"mcp:read", "mcp:admin"}}})
			tok, g := b.signIn(t, SignInOptions{Scopes: []string{"mcp:read", "offline_access"}})
			status, h := mcpInitialize(t, b.mcp.URL, tok.AccessToken)
			scopes, err := b.client.StepUpScopes(status, h, tok.Scopes)
			if err != nil {
				t.Fatalf("StepUpScopes(%d, %q): %v", status, h.Values("WWW-Authenticate"), err)
			}
			if !slices.Equal(scopes, []string{"mcp:read", "mcp:admin"}) {
				t.Fatalf("step-up scopes = %q, want the union", scopes)
			}
			tok2, _, err := b.client.SignIn(t.Context(), b.probe(t), SignInOptions{Previous: &g, Scopes: scopes})
			if err != nil {
				t.Fatalf("step-up SignIn: %v", err)
			}
			requireAccepted(t, b.mcp.URL, tok2)
			// Asking again for what is already granted is a refused upgrade, not a loop.
			if _, err := b.client.StepUpScopes(status, h, scopes); !errors.Is(err, ErrStepUpExhausted) {
				t.Errorf("repeat step-up = %v, want ErrStepUpExhausted", err)
			}
		})
	}
}

func TestStepUpScopesRules(t *testing.T) {
	c, _ := New(Config{MaxScopes: 3})
	hdr := func(v string) http.Header { return http.Header{"Www-Authenticate": {v}} }
	for _, tc := range []struct {
		name    string
		status  int
		h       http.Header
		granted []string
		want    []string
		err     error
	}{
		{"InsufficientScope", 403, hdr(`Bearer error="insufficient_scope", scope="a b"`), []string{"a"}, []string{"a", "b"}, nil},
		{"ScopeOnlyChallenge", 403, hdr(`Bearer scope="b"`), []string{"a"}, []string{"a", "b"}, nil},
		{"Not403", 401, hdr(`Bearer scope="b"`), nil, nil, ErrNotStepUp},
		{"NoChallenge", 403, http.Header{}, nil, nil, ErrNotStepUp},
		{"NothingNew", 403, hdr(`Bearer error="insufficient_scope", scope="a"`), []string{"a"}, nil, ErrStepUpExhausted},
		{"OverCap", 403, hdr(`Bearer scope="c d"`), []string{"a", "b"}, nil, ErrStepUpExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.StepUpScopes(tc.status, tc.h, tc.granted)
			if !errors.Is(err, tc.err) || !slices.Equal(got, tc.want) {
				t.Errorf("StepUpScopes = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// TestWrongResourceIsMisconfigured: a resource the AS will not issue for (RFC 8707 invalid_target) is
// a configuration error, on the authorization request and on refresh alike.
func TestWrongResourceIsMisconfigured(t *testing.T) {
	b := newBench(t, benchOptions{})
	p := b.probe(t)
	tok, g, err := b.client.SignIn(t.Context(), p, SignInOptions{})
	if err != nil {
		t.Fatalf("SignIn: %v", err)
	}
	bad := *p
	bad.Resource = "https://mcp.example.com/mcp"
	_, _, err = b.client.SignIn(t.Context(), &bad, SignInOptions{})
	var oe *Error
	if !errors.As(err, &oe) || oe.Code != "invalid_target" || !errors.Is(err, ErrMisconfigured) {
		t.Errorf("SignIn for a foreign resource = %v, want invalid_target (misconfigured)", err)
	}
	g.Resource = "https://mcp.example.com/mcp"
	_, _, err = b.client.Refresh(t.Context(), g, tok.RefreshToken)
	if !errors.As(err, &oe) || oe.Code != "invalid_target" || !errors.Is(err, ErrMisconfigured) {
		t.Errorf("Refresh for a foreign resource = %v, want invalid_target (misconfigured)", err)
	}
}

// TestRefreshRetriesWithoutResourceWhenEntraRejectsIt: the AS's fault hook answers the first refresh
// the way Entra v2 does; the retry without `resource` succeeds and the grant remembers it.
func TestRefreshRetriesWithoutResourceWhenEntraRejectsIt(t *testing.T) {
	b := newBench(t, benchOptions{})
	tok, g := b.signIn(t, SignInOptions{})
	b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 400, Body: `{"error":"invalid_request",` +
		`"error_description":"AADSTS9010010: The resource parameter provided in the request doesn't match with the requested scopes."}`})
	tok2, g2, err := b.client.Refresh(t.Context(), g, tok.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if !g2.OmitResource {
		t.Error("grant does not remember to omit resource")
	}
	requireAccepted(t, b.mcp.URL, tok2)
	if n := b.as.TokenRequests(t, "refresh_token"); n != 2 {
		t.Errorf("%d refresh requests, want 2 (rejected, then without resource)", n)
	}
	// Remembered: the next refresh goes without resource at once (one request).
	if _, _, err := b.client.Refresh(t.Context(), g2, tok2.RefreshToken); err != nil {
		t.Fatalf("second Refresh: %v", err)
	}
	if n := b.as.TokenRequests(t, "refresh_token"); n != 3 {
		t.Errorf("%d refresh requests, want 3", n)
	}
	// Only the AADSTS code triggers the retry: another invalid_request is returned as is.
	b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 400, Body: `{"error":"invalid_request"}`})
	if _, _, err := b.client.Refresh(t.Context(), g, tok2.RefreshToken); !errors.Is(err, ErrMisconfigured) {
		t.Errorf("Refresh = %v, want misconfigured invalid_request", err)
	}
}
