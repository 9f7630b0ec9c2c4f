package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// authkeeper add and login in process against the real peers: where a secret may come from (stdin
// or the environment, never argv), what they print, and what they refuse to save.

// TestAddTakesAStaticTokenFromStdinOrTheEnvironmentNeverFromArgv: `authkeeper add --token-stdin`
// saves the token read from stdin (and AUTHKEEPER_TOKEN works the same) with its expiry; the token
// appears in no output and in no argument.
func TestAddTakesAStaticTokenFromStdinOrTheEnvironmentNeverFromArgv(t *testing.T) {
	b := newBench(t, benchOptions{Home: true})
	const fromStdin, fromEnv = "api-key-from-stdin-0123", "api-key-from-env-4567"
	code, out, errOut := runCLIWith(t, fromStdin+"\n", nil,
		"add", "http://127.0.0.1:9/mcp", "--name", "keyed", "--token-stdin", "--token-expires", "2099-01-02")
	if code != 0 {
		t.Fatalf("add --token-stdin: exit %d\n%s%s", code, out, errOut)
	}
	code, out2, errOut2 := runCLIWith(t, "", map[string]string{envToken: fromEnv}, "add", "http://127.0.0.1:9/other", "--name", "envkey")
	if code != 0 {
		t.Fatalf("add with %s: exit %d\n%s%s", envToken, code, out2, errOut2)
	}
	assertNoSecrets(t, "add output", out+errOut+out2+errOut2, fromStdin, fromEnv)
	if strings.Contains(out, "Signing in") {
		t.Errorf("a static token add talks about signing in:\n%s", out)
	}
	for name, want := range map[string]string{"keyed": fromStdin, "envkey": fromEnv} {
		got, err := b.eng.Token(context.Background(), name)
		if err != nil || got != want {
			t.Errorf("%s serves the token given: %t, %v", name, got == want, err)
		}
	}
	var keyed engine.ServerStatus
	for _, st := range b.eng.Snapshot().Servers {
		if st.Name == "keyed" {
			keyed = st
		}
	}
	if want := time.Date(2099, 1, 2, 0, 0, 0, 0, time.Local); keyed.Auth != "static-token" || !keyed.Expiry.Equal(want) {
		t.Errorf("status %+v, want a static token expiring %v", keyed, want)
	}
}

// TestAddAndLoginPrintTheSignInURLOnlyOnceDiscoverySucceeded: a server whose discovery fails never
// gets "Signing in … in your browser" (the old output promised a sign-in that then failed); a real
// one gets it with the authorization URL to open by hand, and the server's extra scopes and
// parameters are on that URL — at `add` and again at `login` — and kept in the settings.
func TestAddAndLoginPrintTheSignInURLOnlyOnceDiscoverySucceeded(t *testing.T) {
	b := newBench(t, benchOptions{Home: true})
	code, out, errOut := runCLIWith(t, "", nil, "add", "http://127.0.0.1:9/mcp", "--name", "down")
	if code == 0 {
		t.Fatalf("add of an unreachable server succeeded:\n%s", out)
	}
	if strings.Contains(out+errOut, "Signing in") || strings.Contains(out+errOut, "open this URL") {
		t.Errorf("a failed discovery printed a sign-in:\n%s%s", out, errOut)
	}

	srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: b.as.Issuer, RequiredScopes: []string{"mcp:read"}})
	check := func(verb, out string) {
		t.Helper()
		opened := b.browser.Opened()
		last := opened[len(opened)-1]
		want := "Signing in to " + srv.URL + " in your browser…\nIf your browser did not open, open this URL: " + last + "\n"
		if verb == "login" {
			want = strings.Replace(want, srv.URL, "second", 1)
		}
		if !strings.HasPrefix(out, want) {
			t.Errorf("%s printed:\n%s\nwant it to start with:\n%s", verb, out, want)
		}
		u, err := url.Parse(last)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if scopes := strings.Fields(q.Get("scope")); !slices.Contains(scopes, "mcp:write") || !slices.Contains(scopes, "mcp:read") {
			t.Errorf("%s: the authorization request asks for %v, want the server's mcp:read and the extra mcp:write", verb, scopes)
		}
		if q.Get("audience") != "urn:bench" {
			t.Errorf("%s: the authorization request has audience %q, want urn:bench", verb, q.Get("audience"))
		}
	}
	code, out, errOut = runCLIWith(t, "", nil, "add", srv.URL, "--name", "second", "--scope", "mcp:write", "--param", "audience=urn:bench")
	if code != 0 {
		t.Fatalf("add: exit %d\n%s%s", code, out, errOut)
	}
	check("add", out)
	code, out, errOut = runCLIWith(t, "", nil, "login", "second")
	if code != 0 {
		t.Fatalf("login: exit %d\n%s%s", code, out, errOut)
	}
	check("login", out)
	conf, _ := keychain.NewConfigFile(b.paths.ConfigDir, nil)
	s, err := conf.Load()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(s.Servers, func(s keychain.Server) bool { return s.Name == "second" })
	if i < 0 || !slices.Equal(s.Servers[i].Scopes, []string{"mcp:write"}) || s.Servers[i].Params["audience"] != "urn:bench" {
		t.Errorf("settings %+v, want the extra scope and parameter kept", s.Servers)
	}
}

// TestAddRefusesACredentialForAPlainHTTPServerOnAnotherHost: `authkeeper add http://… --token-stdin`
// for another host fails and saves nothing, since the proxy would send the key in clear text; plain
// http to this machine, and https anywhere, are accepted.
func TestAddRefusesACredentialForAPlainHTTPServerOnAnotherHost(t *testing.T) {
	b := newBench(t, benchOptions{Home: true})
	code, out, errOut := runCLIWith(t, "secret-api-key\n", nil, "add", "http://mcp.example.com/mcp", "--name", "plain", "--token-stdin")
	if code == 0 {
		t.Fatalf("add of a static token for a plain-http remote URL succeeded:\n%s%s", out, errOut)
	}
	assertNoSecrets(t, "add output", out+errOut, "secret-api-key")
	if _, err := b.eng.Token(context.Background(), "plain"); !errors.Is(err, engine.ErrUnknownServer) {
		t.Errorf("Token of the refused server = %v, want ErrUnknownServer: nothing may be saved", err)
	}
	for i, tt := range []struct {
		name, url string
		insecure  bool
	}{
		{"plain http to another host", "http://mcp.example.com/mcp", true},
		{"plain http to an IP of another host", "http://192.0.2.7:8080/mcp", true},
		{"user info in the URL", "https://user:pw@mcp.example.com/mcp", true},
		{"https", "https://mcp.example.com/mcp", false},
		{"plain http to 127.0.0.1", "http://127.0.0.1:9/mcp", false},
		{"plain http to localhost", "http://localhost:9/mcp", false},
		{"plain http to ::1", "http://[::1]:9/mcp", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := b.eng.Add(context.Background(), engine.AddRequest{Name: fmt.Sprintf("key%d", i), URL: tt.url, StaticToken: "api-key"})
			if got := errors.Is(err, oauth.ErrInsecureURL); got != tt.insecure {
				t.Errorf("Add(%s) = %v; want refused as insecure: %t", tt.url, err, tt.insecure)
			}
		})
	}
}
