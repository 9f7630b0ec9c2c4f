package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// noBrowser is the opener of a machine without a display: every attempt to open one is counted and
// fails.
type noBrowser struct {
	mu     sync.Mutex
	opened int
}

func (n *noBrowser) Open(string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.opened++
	return errors.New("no display")
}

func (n *noBrowser) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.opened
}

// TestClientCredentialsServerIsKeptFreshWithoutABrowser: `authkeeper add --client-credentials` (in
// process, with no display: the opener fails) against the real AS's client_credentials grant, with a
// client secret from AUTHKEEPER_CLIENT_SECRET and with a private key (private_key_jwt) from
// --client-key-file. Tokens of 6 s are renewed before they expire with no refresh token and no
// browser while an agent calls through the proxy; when the AS then refuses the client, the server
// needs a sign-in, announced once, saying why.
func TestClientCredentialsServerIsKeptFreshWithoutABrowser(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "client.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "cc-secret-0123456789abcdef"
	b := newBench(t, benchOptions{Home: true, AS: testbed.AuthServerOptions{AccessTokenTTL: 6 * time.Second, StaticClients: []testbed.StaticClient{
		{ID: "robot-secret", Secret: secret, GrantTypes: []string{testbed.GrantClientCredentials}},
		{ID: "robot-key", JWKS: testbed.PublicJWKS(t, "k1", &key.PublicKey), GrantTypes: []string{testbed.GrantClientCredentials}},
	}}})
	// The engine is the one a machine without a display runs: its browser never opens.
	b.eng.Close()
	browser := &noBrowser{}
	eng := startEngine(t, engine.Config{Paths: b.paths, ProxyAddr: "127.0.0.1:0", Opener: browser})
	if err := eng.Remove(context.Background(), "bench"); err != nil { // only machine identities here
		t.Fatal(err)
	}
	_, events, cancel := eng.Subscribe()
	defer cancel()

	for _, tt := range []struct {
		name string
		vars map[string]string
		args []string
	}{
		{"secret", map[string]string{envClientSecret: secret}, []string{"--client-id", "robot-secret"}},
		{"key", nil, []string{"--client-id", "robot-key", "--client-key-file", keyFile, "--client-key-id", "k1"}},
	} {
		args := append([]string{"add", b.srv.URL, "--name", tt.name, "--client-credentials"}, tt.args...)
		code, out, errOut := runCLIWith(t, "", tt.vars, args...)
		if code != 0 {
			t.Fatalf("add --client-credentials (%s): exit %d\n%s%s", tt.name, code, out, errOut)
		}
		if strings.Contains(out, "Signing in") {
			t.Errorf("a client_credentials add talks of a browser:\n%s", out)
		}
		assertNoSecrets(t, "add output", out+errOut, secret)
	}
	ctx, stop := context.WithTimeout(context.Background(), 2*time.Minute)
	defer stop()
	sessions := map[string]*mcp.ClientSession{}
	for _, name := range []string{"secret", "key"} {
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil).Connect(ctx,
			&mcp.StreamableClientTransport{Endpoint: eng.ProxyEndpoint(name)}, nil)
		if err != nil {
			t.Fatalf("%s: connect: %v", name, err)
		}
		defer cs.Close()
		sessions[name] = cs
	}
	before := b.as.TokenRequests(t, testbed.GrantClientCredentials)
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		for name, cs := range sessions {
			if out, err := proxyEcho(ctx, cs, name); err != nil || out != name {
				t.Fatalf("%s: call: %q, %v", name, out, err)
			}
		}
	}
	if n := b.as.TokenRequests(t, testbed.GrantClientCredentials) - before; n < 4 {
		t.Errorf("%d client_credentials requests in 15 s of 6 s tokens for two servers, want at least 4", n)
	}
	if n := b.as.TokenRequests(t, "refresh_token"); n != 0 {
		t.Errorf("%d refresh_token requests for machine identities", n)
	}
	if n := browser.count(); n != 0 {
		t.Errorf("the browser was asked to open %d times", n)
	}
	for _, st := range eng.Snapshot().Servers {
		// With 6-s tokens a scheduled refresh is in flight about one moment in ten: healthy too.
		healthy := st.State == engine.StateFresh || st.State == engine.StateRefreshing
		if !healthy || st.GrantType != "client_credentials" {
			t.Errorf("%s: %s %q, want a fresh (or refreshing) client_credentials server", st.Name, st.State, st.GrantType)
		}
	}

	// The AS stops accepting the client.
	b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 401, Body: `{"error":"invalid_client","error_description":"client disabled"}`, Count: -1})
	ev := waitEventFor(t, events, engine.EventNeedsSignIn, "secret", 20*time.Second)
	if !strings.Contains(ev.Message, "client credentials") {
		t.Errorf("needs-sign-in message %q does not name the client credentials", ev.Message)
	}
	time.Sleep(8 * time.Second)
	var st engine.ServerStatus
	for _, s := range eng.Snapshot().Servers {
		if s.Name == "secret" {
			st = s
		}
	}
	if st.State != engine.StateNeedsSignIn || st.Cause != engine.CauseClientRefused {
		t.Errorf("status %s/%s, want needs-sign-in: client refused", st.State, st.Cause)
	}
	if n := auditKinds(t, b.paths, engine.EventNeedsSignIn, "secret"); n != 1 {
		t.Errorf("%d needs_sign_in events for the refused client, want 1", n)
	}
}
