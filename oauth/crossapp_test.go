package oauth

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// TestCrossAppAccessExchangesTheIDTokenThenRedeemsTheAssertion pins the two requests of cross-app
// access (SEP-990) on tiny httptest peers — the suite's auth/cross-app-access-complete-flow is the
// real one (internal/conformance): an RFC 8693 exchange at the IdP naming the AS's issuer as
// audience and the server as resource, then an RFC 7523 jwt-bearer grant at the AS as the static
// client. The grant records the IdP client, so that signing in again needs only a new ID token, and
// never the ID token itself.
func TestCrossAppAccessExchangesTheIDTokenThenRedeemsTheAssertion(t *testing.T) {
	const idToken, assertion = "id-token-SECRET", "id-jag-SECRET"
	var mu sync.Mutex
	forms := map[string]url.Values{}
	basic := map[string][2]string{}
	record := func(name string, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		u, p, _ := r.BasicAuth()
		mu.Lock()
		forms[name], basic[name] = r.PostForm, [2]string{u, p}
		mu.Unlock()
	}
	idp := serve(t, func(w http.ResponseWriter, r *http.Request) {
		record("idp", r)
		_ = json.NewEncoder(w).Encode(map[string]string{"access_token": assertion,
			"issued_token_type": "urn:ietf:params:oauth:token-type:id-jag", "token_type": "N_A"})
	})
	as := serve(t, func(w http.ResponseWriter, r *http.Request) {
		record("as", r)
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600})
	})
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	p := &Probe{Requirement: OAuthSignIn, Resource: "http://127.0.0.1:1/mcp", AuthServer: &ASMetadata{Issuer: as.URL,
		TokenEndpoint: as.URL + "/token", TokenEndpointAuthMethodsSupported: []string{"client_secret_basic"}}}
	idpClient := EnterpriseIdP{IDToken: idToken, TokenEndpoint: idp.URL + "/token", ClientID: "idp-client", ClientSecret: "idp-SECRET"}
	tok, g, err := c.CrossAppAccess(t.Context(), p, StaticClient{ID: "mcp-client", Secret: "as-SECRET"}, idpClient, SignInOptions{})
	if err != nil {
		t.Fatalf("CrossAppAccess: %v", err)
	}
	if tok.AccessToken != "at-1" || tok.RefreshToken != "" {
		t.Errorf("token %v", tok)
	}
	ex := forms["idp"]
	for k, want := range map[string]string{"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
		"requested_token_type": "urn:ietf:params:oauth:token-type:id-jag", "subject_token": idToken,
		"subject_token_type": "urn:ietf:params:oauth:token-type:id_token", "audience": as.URL, "resource": p.Resource} {
		if got := ex.Get(k); got != want {
			t.Errorf("token exchange %s = %q, want %q", k, got, want)
		}
	}
	if basic["idp"] != [2]string{"idp-client", "idp-SECRET"} {
		t.Errorf("the IdP saw Basic %q", basic["idp"])
	}
	if f := forms["as"]; f.Get("grant_type") != string(GrantJWTBearer) || f.Get("assertion") != assertion {
		t.Errorf("jwt-bearer grant form %v", f)
	}
	if basic["as"] != [2]string{"mcp-client", "as-SECRET"} {
		t.Errorf("the AS saw Basic %q", basic["as"])
	}
	if g.GrantType != GrantJWTBearer || g.IdPTokenEndpoint != idpClient.TokenEndpoint || g.IdPClientID != "idp-client" ||
		g.IdPClientSecret != "idp-SECRET" || g.ClientSecret != "as-SECRET" {
		t.Errorf("grant %v does not record both clients", g)
	}
	js, _ := json.Marshal(g)
	if s := string(js) + g.String(); strings.Contains(s, idToken) || strings.Contains(g.String(), "SECRET") {
		t.Errorf("the grant keeps the ID token or prints a secret: %s", s)
	}
}
