package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serverKey stands for an API key some MCP servers take in their URL's query
// (https://mcp.x.com/mcp?api_key=…): it must reach the server and nothing else.
const serverKey = "KEY-in-query"

// TestServerURLQueryStaysOffTheResource probes servers through a URL carrying a key in its query: a
// 2025-03-26 server (no protected-resource metadata: the resource is derived from the URL) and a
// current one (the resource is the one its metadata advertises, which must still be found to cover
// the URL). The key reaches neither the AS — authorization request, code exchange, refresh — nor the
// grant, while the probe keeps it on the URL that reaches the server.
func TestServerURLQueryStaysOffTheResource(t *testing.T) {
	for _, c := range []struct {
		name string
		prm  bool
	}{{"Legacy", false}, {"ResourceMetadata", true}} {
		t.Run(c.name, func(t *testing.T) {
			as := newMiniAS(t, c.prm, nil)
			browser := &pageBrowser{}
			client, err := New(Config{Opener: browser, SignInTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			serverURL := as.URL + "/mcp?api_key=" + serverKey
			p, err := client.Probe(t.Context(), serverURL)
			if err != nil || p.Requirement != OAuthSignIn {
				t.Fatalf("Probe(%s) = %+v, %v; want OAuthSignIn", serverURL, p, err)
			}
			if want := as.URL + "/mcp"; p.Resource != want || p.ServerURL != serverURL {
				t.Fatalf("probe resource %q server %q; want resource %q and the server URL kept whole", p.Resource, p.ServerURL, want)
			}
			tok, g, err := client.SignIn(t.Context(), p, SignInOptions{})
			if err != nil {
				t.Fatalf("SignIn: %v", err)
			}
			if _, g, err = client.Refresh(t.Context(), g, tok.RefreshToken); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			sent := append(as.authzQueries(), as.tokenForms()...)
			if len(sent) != 3 {
				t.Fatalf("%d requests to the AS, want an authorization, a code exchange and a refresh", len(sent))
			}
			for _, q := range sent {
				if q.Get("resource") != p.Resource {
					t.Errorf("request %v: resource %q, want %q", q, q.Get("resource"), p.Resource)
				}
			}
			if seen := fmt.Sprintf("%v %v %#v %s", sent, g, g, g.Resource); strings.Contains(seen, serverKey) {
				t.Errorf("the server's key left its URL: %s", seen)
			}
		})
	}
}

// TestServerURLQueryIsNeverPrinted: every error and String that names a server URL or resource shows
// it without its query — also for a resource that still has one (a grant stored before resources
// dropped their query, or a resource_metadata URL that echoes the key).
func TestServerURLQueryIsNeverPrinted(t *testing.T) {
	withKey := "https://mcp.example/mcp?api_key=" + serverKey
	mismatch := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/mcp":
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="http://`+r.Host+`/prm?api_key=`+serverKey+`"`)
			w.WriteHeader(http.StatusUnauthorized)
		case "/prm":
			_ = json.NewEncoder(w).Encode(map[string]any{"resource": withKey, "authorization_servers": []string{"https://as.example"}})
		default:
			http.NotFound(w, r)
		}
	})
	failing := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/mcp" {
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="http://`+r.Host+`/prm?api_key=`+serverKey+`"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
	})
	now := func(time.Duration) <-chan time.Time {
		ch := make(chan time.Time, 1)
		ch <- time.Now()
		return ch
	}
	probe := &Probe{ServerURL: withKey, Requirement: OAuthSignIn, Resource: withKey, PKCE: PKCEAdvertised,
		AuthServer: &ASMetadata{Issuer: "https://as.example", AuthorizationEndpoint: "https://as.example/authorize", TokenEndpoint: "https://as.example/token"}}
	signIn := func(c *Client) error {
		_, _, err := c.SignIn(t.Context(), probe, SignInOptions{Client: &StaticClient{ID: "id"}})
		return err
	}
	for _, c := range []struct {
		name   string
		opener Opener
		run    func(*Client) error
		want   error // what the error must be, nil for a String
		shown  string
	}{
		{"ResourceMismatch", nil, func(c *Client) error {
			_, err := c.Probe(t.Context(), mismatch.URL+"/mcp?api_key="+serverKey)
			return err
		}, ErrResourceMismatch, "/prm"},
		{"ResourceMetadataFailed", nil, func(c *Client) error {
			_, err := c.Probe(t.Context(), failing.URL+"/mcp?api_key="+serverKey)
			return err
		}, ErrTransient, "/prm"},
		{"SignInTimeout", openerFunc(func(string) error { return nil }), signIn, ErrSignInTimeout, "https://mcp.example/mcp"},
		{"SignInTimeoutWithoutBrowser", openerFunc(func(string) error { return errors.New("no browser") }), signIn, ErrSignInTimeout, "https://mcp.example/mcp"},
		{"SignInInProgress", nil, func(c *Client) error {
			if err := c.begin(withKey); err != nil {
				return err
			}
			defer c.end(withKey)
			return c.begin(withKey)
		}, ErrSignInInProgress, "https://mcp.example/mcp"},
		{"GrantString", nil, func(*Client) error {
			return errors.New(fmt.Sprint(Grant{Resource: withKey, Issuer: "https://as.example"}))
		}, nil, "resource=https://mcp.example/mcp "},
	} {
		t.Run(c.name, func(t *testing.T) {
			client, err := New(Config{Opener: c.opener, After: now, HTTPClient: &http.Client{Transport: &recorder{}}})
			if err != nil {
				t.Fatal(err)
			}
			err = c.run(client)
			if err == nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("error = %v, want %v", err, c.want)
			}
			if s := printed(err); strings.Contains(s, serverKey) || !strings.Contains(s, c.shown) {
				t.Errorf("printed: %s; want it to name %q, without the query", s, c.shown)
			}
		})
	}
}

// TestEarlierGrantWithAQueryInItsResourceIsStillReused: a grant stored before resources dropped the
// server URL's query names the resource with it. The next sign-in, whose resource has no query, still
// reuses its registration and what it learned (no second registration, no second consent to learn
// that the AS refuses `resource`); a grant for another resource is not reused.
func TestEarlierGrantWithAQueryInItsResourceIsStillReused(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	p := &Probe{Requirement: OAuthSignIn, ServerURL: "https://mcp.example.com/mcp?api_key=" + serverKey,
		Resource: "https://mcp.example.com/mcp", AuthServer: &ASMetadata{Issuer: "https://as.example.com",
			AuthorizationEndpoint: "https://as.example.com/authorize", TokenEndpoint: "https://as.example.com/token",
			RegistrationEndpoint: "https://as.example.com/register"}}
	for _, c2 := range []struct {
		resource string
		reused   bool
	}{
		{"https://mcp.example.com/mcp?api_key=" + serverKey, true},
		{"https://mcp.example.com/mcp", true},
		{"https://mcp.example.com/other?api_key=" + serverKey, false},
	} {
		prev := &Grant{Resource: c2.resource, Issuer: "https://as.example.com", ClientID: "client-1",
			Registration: RegistrationDynamic, OmitResource: true}
		g, err := c.chooseClient(p, SignInOptions{Previous: prev})
		if err != nil {
			t.Fatal(err)
		}
		if got := g.ClientID == "client-1" && g.OmitResource; got != c2.reused {
			t.Errorf("previous grant for %s: reused %t (client %q, omit_resource %t), want %t", c2.resource, got, g.ClientID,
				g.OmitResource, c2.reused)
		}
		if g.Resource != p.Resource {
			t.Errorf("resource %q, want %q", g.Resource, p.Resource)
		}
	}
}
