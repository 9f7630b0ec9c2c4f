package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// pemKey generates a private key of kind "rsa" or "ec" and returns it as PKCS #8 PEM with its public
// half.
func pemKey(t *testing.T, kind string) (string, crypto.PublicKey) {
	t.Helper()
	var key crypto.Signer
	var err error
	if kind == "rsa" {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), key.Public()
}

// TestClientCredentialsGetsAndRenewsTokens pins issue 11 point 10 against oidc-provider: a machine
// client authenticating with a secret (Basic and post) or a private_key_jwt assertion (RS256, ES256)
// gets a token the MCP server accepts, and Refresh of such a grant fetches a new one.
func TestClientCredentialsGetsAndRenewsTokens(t *testing.T) {
	rsaPEM, rsaPub := pemKey(t, "rsa")
	ecPEM, ecPub := pemKey(t, "ec")
	clients := []testbed.StaticClient{
		{ID: "robot-basic", AuthMethod: testbed.AuthClientSecretBasic, GrantTypes: []string{testbed.GrantClientCredentials}},
		{ID: "robot-post", AuthMethod: testbed.AuthClientSecretPost, GrantTypes: []string{testbed.GrantClientCredentials}},
		{ID: "robot-rsa", JWKS: testbed.PublicJWKS(t, "k-rsa", rsaPub), GrantTypes: []string{testbed.GrantClientCredentials}},
		{ID: "robot-ec", JWKS: testbed.PublicJWKS(t, "k-ec", ecPub), GrantTypes: []string{testbed.GrantClientCredentials}},
	}
	b := newBench(t, benchOptions{as: testbed.AuthServerOptions{StaticClients: clients}})
	p := b.probe(t)
	for _, c := range []struct {
		id     string
		sc     StaticClient
		method AuthMethod
	}{
		{"robot-basic", StaticClient{}, AuthClientSecretBasic},
		{"robot-post", StaticClient{AuthMethod: AuthClientSecretPost}, AuthClientSecretPost},
		{"robot-rsa", StaticClient{PrivateKey: rsaPEM, KeyID: "k-rsa"}, AuthPrivateKeyJWT},
		{"robot-ec", StaticClient{PrivateKey: ecPEM}, AuthPrivateKeyJWT},
	} {
		t.Run(c.id, func(t *testing.T) {
			sc := c.sc
			sc.ID = c.id
			for _, bc := range b.as.Clients {
				if bc.ID == c.id {
					sc.Secret = bc.Secret
				}
			}
			before := b.as.TokenRequests(t, "client_credentials")
			tok, g, err := b.client.ClientCredentials(t.Context(), p, sc, SignInOptions{})
			if err != nil {
				t.Fatalf("ClientCredentials: %v", err)
			}
			requireAccepted(t, b.mcp.URL, tok)
			if g.GrantType != GrantClientCredentials || g.AuthMethod != c.method || tok.RefreshToken != "" || tok.Expiry.IsZero() {
				t.Errorf("grant %v, token %v", g, tok)
			}
			if strings.Contains(g.String(), sc.PrivateKey) && sc.PrivateKey != "" || sc.Secret != "" && strings.Contains(g.String(), sc.Secret) {
				t.Error("Grant.String leaks a secret")
			}
			tok2, _, err := b.client.Refresh(t.Context(), g, "")
			if err != nil {
				t.Fatalf("Refresh of a client_credentials grant: %v", err)
			}
			requireAccepted(t, b.mcp.URL, tok2)
			if tok2.AccessToken == tok.AccessToken || b.as.TokenRequests(t, "client_credentials")-before != 2 {
				t.Errorf("Refresh did not fetch a new token with the client's credentials")
			}
		})
	}
	t.Run("WrongKeyIsAClientError", func(t *testing.T) {
		other, _ := pemKey(t, "ec")
		_, _, err := b.client.ClientCredentials(t.Context(), p, StaticClient{ID: "robot-ec", PrivateKey: other}, SignInOptions{})
		if !errors.Is(err, ErrClientInvalid) {
			t.Errorf("ClientCredentials with another key = %v, want client invalid", err)
		}
	})
	t.Run("NoCredentials", func(t *testing.T) {
		if _, _, err := b.client.ClientCredentials(t.Context(), p, StaticClient{ID: "robot-basic"}, SignInOptions{}); !errors.Is(err, ErrMisconfigured) {
			t.Errorf("ClientCredentials without secret or key = %v, want misconfigured", err)
		}
		_, _, err := b.client.ClientCredentials(t.Context(), p, StaticClient{ID: "robot-ec", PrivateKey: "-----BEGIN PRIVATE KEY-----\nS2VZLXNlY3JldA==\n-----END PRIVATE KEY-----\n"}, SignInOptions{})
		if !errors.Is(err, ErrMisconfigured) || strings.Contains(printed(err), "S2VZLXNlY3JldA") {
			t.Errorf("ClientCredentials with a bad key = %v, want misconfigured without the key", err)
		}
	})
}

// TestSignInAuthenticatesAsTheMetadataAllows pins issue 11 point 8 on the authorization-code grant: a
// user-supplied secret goes as client_secret_post when the AS lists only that, and a user-supplied
// private key signs RFC 7523 assertions at the token endpoint, on sign-in and refresh.
func TestSignInAuthenticatesAsTheMetadataAllows(t *testing.T) {
	keyPEM, pub := pemKey(t, "rsa")
	clients := []testbed.StaticClient{{ID: "web-jwt", JWKS: testbed.PublicJWKS(t, "k1", pub), RedirectURIs: []string{"http://127.0.0.1/callback"}}}
	b := newBench(t, benchOptions{as: testbed.AuthServerOptions{StaticClients: clients}})
	t.Run("PrivateKeyJWT", func(t *testing.T) {
		tok, g := b.signIn(t, SignInOptions{Client: &StaticClient{ID: "web-jwt", PrivateKey: keyPEM, KeyID: "k1"}})
		requireAccepted(t, b.mcp.URL, tok)
		if g.AuthMethod != AuthPrivateKeyJWT || strings.Contains(g.String(), "PRIVATE KEY") {
			t.Errorf("grant = %v", g)
		}
		refreshTimes(t, b, tok, g, 1)
	})
	t.Run("SecretPostWhenOnlyPostIsListed", func(t *testing.T) {
		good := fetchJSON(t, b.as.Issuer+"/.well-known/oauth-authorization-server")
		good["token_endpoint_auth_methods_supported"] = []string{"client_secret_post", "none"}
		body, _ := json.Marshal(good)
		b.as.Fault(t, testbed.Fault{Endpoint: "oauth-authorization-server", Status: 200, Body: string(body)})
		p := b.probe(t)
		sc := registerByHand(t, b.as, testbed.FreePort(t), AuthClientSecretPost)
		sc.AuthMethod = "" // the user gives id and secret only
		tok, g, err := b.client.SignIn(t.Context(), p, SignInOptions{Client: &sc})
		if err != nil {
			t.Fatalf("SignIn: %v", err)
		}
		requireAccepted(t, b.mcp.URL, tok)
		if g.AuthMethod != AuthClientSecretPost {
			t.Errorf("auth method = %q, want client_secret_post", g.AuthMethod)
		}
	})
}
