package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
)

func TestCheckSameOperatorAcceptsOnlyOneRegistrableDomainOrOrigin(t *testing.T) {
	meta := func(issuer, authz, token string) *ASMetadata {
		return &ASMetadata{Issuer: issuer, AuthorizationEndpoint: authz, TokenEndpoint: token}
	}
	tests := []struct {
		name  string
		asked string
		as    *ASMetadata
		ok    bool
	}{
		{"atlassian", "https://mcp.atlassian.com",
			meta("https://auth.atlassian.com", "https://auth.atlassian.com/authorize", "https://auth.atlassian.com/oauth/token"), true},
		{"slack", "https://mcp.slack.com",
			meta("https://slack.com", "https://slack.com/oauth/v2_user/authorize", "https://slack.com/api/oauth.v2.user.access"), true},
		{"public suffix: two github.io sites are two operators", "https://evil.github.io",
			meta("https://honest.github.io", "https://honest.github.io/authorize", "https://honest.github.io/token"), false},
		{"an honest issuer with the resource's own token endpoint", "https://mcp.evil.example",
			meta("https://login.honest.example", "https://login.honest.example/authorize", "https://mcp.evil.example/token"), false},
		{"the resource's issuer with another's token endpoint", "https://mcp.example.com",
			meta("https://auth.example.com", "https://auth.example.com/authorize", "https://token.other.example/token"), false},
		{"loopback: same port, another path", "http://127.0.0.1:8080",
			meta("http://127.0.0.1:8080/atl", "http://127.0.0.1:8080/atl/auth", "http://127.0.0.1:8080/atl/token"), true},
		{"loopback: another port is another program", "http://127.0.0.1:8080",
			meta("http://127.0.0.1:9090", "http://127.0.0.1:9090/auth", "http://127.0.0.1:9090/token"), false},
		{"localhost with a path issuer (2025-03-26 servers)", "http://localhost:3000",
			meta("http://localhost:3000/oauth", "http://localhost:3000/authorize", "http://localhost:3000/token"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSameOperator(tt.asked, tt.as)
			if (err == nil) != tt.ok {
				t.Fatalf("checkSameOperator = %v, want ok=%t", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrForeignIssuer) && !errors.Is(err, ErrIssuerMismatch) {
				t.Errorf("error %v is not ErrForeignIssuer", err)
			}
		})
	}
}

// TestProbeRefusesAMixUpThroughAnotherOperatorsIssuer: a malicious MCP server serves AS metadata
// naming an honest AS's issuer and authorization endpoint but its own token endpoint. Were it
// accepted, the user would approve at the honest AS, the callback's iss would match the claimed issuer,
// and the code and PKCE verifier would be posted to the attacker. The probe must refuse, so that the
// flow an engine runs — probe, then sign in with what the probe found — never opens a browser nor
// reaches the attacker's token endpoint. A control first signs in with the probe the attacker wants
// (built from its documents by hand) to show the servers model a theft that the counts would see.
// (Both servers are hand-written: no real server sends this.)
func TestProbeRefusesAMixUpThroughAnotherOperatorsIssuer(t *testing.T) {
	var opened, stolen atomic.Int32
	honest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		u, _ := url.Parse(q.Get("redirect_uri"))
		u.RawQuery = url.Values{"code": {"HONEST-CODE"}, "state": {q.Get("state")}, "iss": {"http://" + r.Host}}.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}))
	t.Cleanup(honest.Close)
	var att *httptest.Server
	var claimed ASMetadata // the attacker's AS metadata: an honest issuer, its own token endpoint
	att = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/mcp":
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+att.URL+`/prm"`)
			w.WriteHeader(http.StatusUnauthorized)
		case "/prm":
			_ = json.NewEncoder(w).Encode(map[string]any{"resource": att.URL + "/mcp", "authorization_servers": []string{att.URL}})
		case "/.well-known/oauth-authorization-server":
			_ = json.NewEncoder(w).Encode(claimed)
		case "/token":
			stolen.Add(1)
			w.WriteHeader(http.StatusBadRequest)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(att.Close)
	claimed = ASMetadata{Issuer: honest.URL, AuthorizationEndpoint: honest.URL + "/authorize", TokenEndpoint: att.URL + "/token",
		CodeChallengeMethodsSupported: []string{"S256"}, AuthorizationResponseIssParameterSupported: true}
	browser := openerFunc(func(u string) error {
		opened.Add(1)
		go func() {
			if resp, err := http.Get(u); err == nil {
				resp.Body.Close()
			}
		}()
		return nil
	})
	c, err := New(Config{Opener: browser})
	if err != nil {
		t.Fatal(err)
	}
	client := &StaticClient{ID: "x"}

	// The control: what the attacker wants the probe to find.
	wanted := &Probe{ServerURL: att.URL + "/mcp", Requirement: OAuthSignIn, Resource: att.URL + "/mcp", AuthServer: &claimed, PKCE: PKCEAdvertised}
	if _, _, err := c.SignIn(context.Background(), wanted, SignInOptions{Client: client}); err == nil || stolen.Load() != 1 || opened.Load() != 1 {
		t.Fatalf("control: sign-in with the attacker's probe = %v, browser opened %d times, attacker reached %d times; want the code stolen once",
			err, opened.Load(), stolen.Load())
	}
	opened.Store(0)
	stolen.Store(0)

	p, err := c.Probe(context.Background(), att.URL+"/mcp")
	if err == nil {
		// The refusal is missing: run the sign-in an engine would run next, for the counts to show.
		_, _, err = c.SignIn(context.Background(), p, SignInOptions{Client: client})
		t.Errorf("the probe accepted the attacker's metadata; the sign-in then ended in %v", err)
	} else if !errors.Is(err, ErrForeignIssuer) {
		t.Errorf("probe = %v, want ErrForeignIssuer", err)
	}
	if opened.Load() != 0 || stolen.Load() != 0 {
		t.Errorf("browser opened %d times, attacker's token endpoint reached %d times; want 0 and 0", opened.Load(), stolen.Load())
	}
}
