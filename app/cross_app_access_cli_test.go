package app

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// The suite's auth/cross-app-access-complete-flow scenario is the real IdP and AS peer of cross-app
// access (internal/conformance); these tests pin the command line, the settings and the keeper.

const (
	xaaIDToken    = "eyJhbGciOiJFUzI1NiJ9.id-token-secret.sig"
	xaaSecret     = "as-client-secret-0123"
	xaaIdPSecret  = "idp-client-secret-4567"
	xaaIdPToken   = "https://idp.example/oauth2/token"
	xaaServerURL  = "https://mcp.example/mcp"
	xaaServerName = "xaa"
)

// TestAddParsesCrossAppAccessAndTakesItsSecretsOnlyFromTheEnvironmentOrStdin: `add --cross-app`
// builds the control call's body from the flags, the client secrets from the environment and the ID
// token from the environment or stdin — never from argv — and refuses combinations that cannot work
// before anything is asked of a server. The ID token and IdP secret are read only for --cross-app.
func TestAddParsesCrossAppAccessAndTakesItsSecretsOnlyFromTheEnvironmentOrStdin(t *testing.T) {
	all := map[string]string{envIDToken: xaaIDToken, envClientSecret: xaaSecret, envIdPClientSecret: xaaIdPSecret}
	without := func(k string) map[string]string {
		m := map[string]string{}
		for kk, v := range all {
			if kk != k {
				m[kk] = v
			}
		}
		return m
	}
	xaa := []string{"add", xaaServerURL, "--name", xaaServerName, "--cross-app", "--client-id", "mcp-client",
		"--idp-token-endpoint", xaaIdPToken, "--idp-client-id", "idp-client"}
	full := control.AddBody{Name: xaaServerName, URL: xaaServerURL, ClientID: "mcp-client", Secret: xaaSecret, CrossApp: true,
		IdPTokenEndpoint: xaaIdPToken, IdPClientID: "idp-client", IdPSecret: xaaIdPSecret, IDToken: xaaIDToken}
	for _, tt := range []struct {
		name  string
		args  []string
		vars  map[string]string
		stdin string
		want  control.AddBody
		err   string // in the error; "" for none
	}{
		{name: "everything from the environment", args: xaa, vars: all, want: full},
		{name: "ID token from stdin", args: append(xaa[1:len(xaa):len(xaa)], "--id-token-stdin"), vars: without(envIDToken),
			stdin: xaaIDToken + "\n", want: full},
		{name: "public clients: no secrets", args: xaa, vars: map[string]string{envIDToken: xaaIDToken},
			want: control.AddBody{Name: xaaServerName, URL: xaaServerURL, ClientID: "mcp-client", CrossApp: true,
				IdPTokenEndpoint: xaaIdPToken, IdPClientID: "idp-client", IDToken: xaaIDToken}},
		{name: "the IdP variables are not read without --cross-app", args: []string{"add", xaaServerURL, "--name", xaaServerName},
			vars: all, want: control.AddBody{Name: xaaServerName, URL: xaaServerURL, Secret: xaaSecret}},
		{name: "no ID token", args: xaa, vars: without(envIDToken), err: "ID token"},
		{name: "empty ID token on stdin", args: append(xaa[1:len(xaa):len(xaa)], "--id-token-stdin"), vars: without(envIDToken),
			stdin: "\n", err: "no ID token on standard input"},
		{name: "no IdP client id", args: xaa[:len(xaa)-2], vars: all, err: "--idp-client-id"},
		{name: "no client id", args: []string{"add", xaaServerURL, "--cross-app", "--idp-token-endpoint", xaaIdPToken, "--idp-client-id", "i"},
			vars: all, err: "--client-id"},
		{name: "IdP flags without --cross-app", args: []string{"add", xaaServerURL, "--idp-client-id", "i"}, vars: all, err: "with --cross-app"},
		{name: "--id-token-stdin without --cross-app", args: []string{"add", xaaServerURL, "--id-token-stdin"}, stdin: "x", err: "with --cross-app"},
		{name: "two secrets on stdin", args: append(xaa[1:len(xaa):len(xaa)], "--id-token-stdin", "--token-stdin"), err: "both read stdin"},
		{name: "with client credentials", args: append(xaa[1:len(xaa):len(xaa)], "--client-credentials"), vars: all, err: "choose one"},
		{name: "with a device code", args: append(xaa[1:len(xaa):len(xaa)], "--device"), vars: all, err: "choose one"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if args[0] != "add" {
				args = append([]string{"add"}, args...)
			}
			vars := tt.vars
			getenv := func(k string) string { return vars[k] }
			e := env{stdout: io.Discard, stderr: io.Discard, stdin: strings.NewReader(tt.stdin), getenv: getenv}
			got, _, err := parseAdd(args[1:], e)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("parseAdd = %v, want an error about %q", err, tt.err)
				}
				assertNoSecrets(t, "the error", err.Error(), xaaIDToken, xaaSecret, xaaIdPSecret)
				return
			}
			if err != nil {
				t.Fatalf("parseAdd: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			for _, a := range args {
				assertNoSecrets(t, "argv", a, xaaIDToken, xaaSecret, xaaIdPSecret)
			}
		})
	}
}

// TestCrossAppSettingsKeepOnlyTheNonSecretParts: the body of `add --cross-app` becomes a request whose
// settings entry names the grant, the IdP's token endpoint and both client ids, and nothing secret; a
// request without the ID token or the client id is refused before anything is asked of a server.
func TestCrossAppSettingsKeepOnlyTheNonSecretParts(t *testing.T) {
	b := control.AddBody{Name: xaaServerName, URL: xaaServerURL, ClientID: "mcp-client", Secret: xaaSecret, CrossApp: true,
		IdPTokenEndpoint: xaaIdPToken, IdPClientID: "idp-client", IdPSecret: xaaIdPSecret, IDToken: xaaIDToken}
	req := b.Request()
	want := &oauth.EnterpriseIdP{IDToken: xaaIDToken, TokenEndpoint: xaaIdPToken, ClientID: "idp-client", ClientSecret: xaaIdPSecret}
	if diff := cmp.Diff(want, req.IdP); diff != "" {
		t.Errorf("IdP (-want +got):\n%s", diff)
	}
	srv, err := req.SettingsFor()
	if err != nil {
		t.Fatal(err)
	}
	wantSrv := keychain.Server{Name: xaaServerName, URL: xaaServerURL, ClientID: "mcp-client", GrantType: keychain.GrantCrossAppAccess,
		IdPTokenEndpoint: xaaIdPToken, IdPClientID: "idp-client"}
	if diff := cmp.Diff(wantSrv, srv); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
	js, err := json.Marshal(srv)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, "the settings", string(js), xaaIDToken, xaaSecret, xaaIdPSecret)

	for _, tt := range []struct {
		name   string
		change func(*engine.AddRequest)
	}{
		{"no ID token", func(r *engine.AddRequest) { r.IdP.IDToken = "" }},
		{"no client", func(r *engine.AddRequest) { r.Client = nil }},
		{"and client credentials", func(r *engine.AddRequest) { r.ClientCredentials = true }},
		{"no IdP client id", func(r *engine.AddRequest) { r.IdP.ClientID = "" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := b.Request()
			tt.change(&r)
			if _, err := r.SettingsFor(); err == nil {
				t.Error("settingsFor accepted it")
			}
		})
	}
}

// TestCrossAppSignInAgainNeedsANewIDTokenAndTheStoredSecrets: signing in again to a cross-app access
// server without an ID token, or after its record (and so its client secrets) is gone, is refused with
// what to do — before any request: the server's URL is a closed port, which a probe would report.
func TestCrossAppSignInAgainNeedsANewIDTokenAndTheStoredSecrets(t *testing.T) {
	paths := tempPaths(t)
	conf, err := keychain.NewConfigFile(paths.ConfigDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := keychain.DefaultSettings()
	for _, name := range []string{"kept", "gone"} {
		s.Servers = append(s.Servers, keychain.Server{Name: name, URL: "http://127.0.0.1:9/mcp", ClientID: "mcp-client",
			GrantType: keychain.GrantCrossAppAccess, IdPTokenEndpoint: "http://127.0.0.1:9/token", IdPClientID: "idp-client"})
	}
	if err := conf.Save(s); err != nil {
		t.Fatal(err)
	}
	store := keychain.NewMemoryStore(time.Now)
	g := oauth.Grant{Resource: "http://127.0.0.1:9/mcp", Issuer: "http://127.0.0.1:9", TokenEndpoint: "http://127.0.0.1:9/as/token",
		ClientID: "mcp-client", ClientSecret: xaaSecret, AuthMethod: oauth.AuthClientSecretBasic, GrantType: oauth.GrantJWTBearer,
		IdPTokenEndpoint: "http://127.0.0.1:9/token", IdPClientID: "idp-client", IdPClientSecret: xaaIdPSecret}
	if _, err := store.Put("kept", engine.ToRecord(oauth.Token{AccessToken: "at", Expiry: time.Now().Add(time.Hour)}, g)); err != nil {
		t.Fatal(err)
	}
	eng := startEngine(t, engine.Config{Paths: paths, Store: store, NoProxy: true})

	err = eng.SignInWith(context.Background(), "kept", engine.SignInRequest{})
	if !errors.Is(err, engine.ErrNeedsIDToken) || !strings.Contains(err.Error(), "--id-token-stdin") {
		t.Errorf("sign-in without an ID token = %v, want one naming --id-token-stdin", err)
	}
	err = eng.SignInWith(context.Background(), "gone", engine.SignInRequest{IDToken: xaaIDToken})
	if err == nil || !strings.Contains(err.Error(), "not stored any more") {
		t.Errorf("sign-in without the stored secrets = %v, want one saying they are gone", err)
	}
	// With both, the sign-in goes ahead, as far as the closed port lets it.
	err = eng.SignInWith(context.Background(), "kept", engine.SignInRequest{IDToken: xaaIDToken})
	if err == nil || !strings.Contains(err.Error(), "probe") {
		t.Errorf("sign-in with an ID token and the stored secrets = %v, want it to try the server", err)
	}
	assertNoSecrets(t, "the errors", err.Error(), xaaIDToken, xaaSecret, xaaIdPSecret)
}
