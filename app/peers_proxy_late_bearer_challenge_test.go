package app

import (
	"context"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestProxyServerSavedWithoutAuthThatDemandsATokenBecomesOAuth: a server that answers initialize and
// tools/list to anyone and demands a token only for tools/call (the real Go SDK server behind its
// bearer middleware for that method), saved as needing no auth — as the probe of an older authkeeper
// saved it. Its first 401 with a Bearer challenge turns it into an OAuth server that needs a sign-in:
// the setting is kept across a restart, one needs-sign-in is announced, the agent gets the
// non-retryable sign_in_required (not a retryable upstream_unavailable), and after a sign-in the same
// session's calls work.
func TestProxyServerSavedWithoutAuthThatDemandsATokenBecomesOAuth(t *testing.T) {
	testbed.StartKeyring(t)
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{})
	srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: as.Issuer, RequiredScopes: []string{"mcp:read"},
		ProtectedMethods: []string{"tools/call"}})
	paths := tempPaths(t)
	conf, err := keychain.NewConfigFile(paths.ConfigDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := keychain.DefaultSettings()
	s.Servers = []keychain.Server{{Name: "partial", URL: srv.URL}}
	if err := conf.Save(s); err != nil {
		t.Fatal(err)
	}
	ks, err := keychain.NewKeyringStore(keychain.KeyringConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Put("partial", engine.ToRecord(oauth.Token{}, oauth.Grant{Resource: srv.URL, Registration: engine.RegistrationNoAuth})); err != nil {
		t.Fatal(err)
	}
	browser := testbed.NewBrowser(t, testbed.BrowserOptions{})
	start := func() *engine.Engine {
		t.Helper()
		eng := startEngine(t, engine.Config{Paths: paths, ProxyAddr: "127.0.0.1:0", Opener: browser})
		return eng
	}
	eng := start()
	_, events, cancel := eng.Subscribe()
	defer cancel()
	if st := eng.Snapshot().Servers[0]; st.Auth != "no-auth" {
		t.Fatalf("seeded server is %q, want no-auth", st.Auth)
	}
	ctx, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: eng.ProxyEndpoint("partial")}, nil)
	if err != nil {
		t.Fatalf("connect (initialize needs no token): %v", err)
	}
	defer cs.Close()
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatalf("tools/list needs no token: %v", err)
	}
	for i := range 3 {
		_, err := proxyEcho(ctx, cs, "x")
		we, d := proxyStructured(t, err)
		if we.Code != proxy.CodeAuthFailure || d.Type != "auth_failure" || d.Subtype != proxy.SubtypeSignInRequired || d.Retryable {
			t.Fatalf("call %d: code %d data %+v; want the non-retryable auth_failure/sign_in_required", i, we.Code, d)
		}
	}
	waitEvent(t, events, engine.EventNeedsSignIn, 5*time.Second)
	st := eng.Snapshot().Servers[0]
	if st.Auth != "oauth" || st.State != engine.StateNeedsSignIn || st.Cause != engine.CauseAuthRequired {
		t.Errorf("status %s %s/%s, want an OAuth server that needs sign-in", st.Auth, st.State, st.Cause)
	}
	if rec, err := ks.Get("partial"); err != nil || rec.Binding.RegistrationMethod != "" || rec.Binding.Resource != srv.URL {
		t.Errorf("keychain record %v, %v; want the server saved as OAuth", rec, err)
	}

	// A restart remembers it; the announcement is not repeated.
	eng.Close()
	eng = start()
	_, events2, cancel2 := eng.Subscribe()
	defer cancel2()
	if st := eng.Snapshot().Servers[0]; st.Auth != "oauth" || st.State != engine.StateNeedsSignIn {
		t.Fatalf("after a restart: %s %s, want oauth needs-sign-in", st.Auth, st.State)
	}
	// `authkeeper login` finds the sign-in: the probe also tries a call that needs a token.
	if err := eng.SignIn(ctx, "partial", false, nil); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	cs2, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: eng.ProxyEndpoint("partial")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs2.Close()
	if got, err := proxyEcho(ctx, cs2, "after sign-in"); err != nil || got != "after sign-in" {
		t.Fatalf("call after signing in: %q, %v", got, err)
	}
	for {
		select {
		case ev := <-events2:
			if ev.Kind == engine.EventNeedsSignIn {
				t.Errorf("needs-sign-in announced again after the restart: %+v", ev)
			}
			continue
		default:
		}
		break
	}
}

// TestSignInFindsTheAuthorizationServerOfAServerWhoseProbeIsLetThrough: a server (the real Go SDK
// server) that answers everything the probe sends without a token — initialize, tools/list, and the
// probe's call of a tool it does not have, with a JSON-RPC error — yet demands one for another request
// (here ping) is added as needing no auth. Its 401 through the proxy makes it an OAuth server; `login`
// then probes it again, is let through again, and must still sign in: from the 401's challenge, kept
// in the keychain record across a restart and across a logout.
func TestSignInFindsTheAuthorizationServerOfAServerWhoseProbeIsLetThrough(t *testing.T) {
	testbed.StartKeyring(t)
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{})
	srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: as.Issuer, RequiredScopes: []string{"mcp:read"},
		ProtectedMethods: []string{"ping"}})
	paths := tempPaths(t)
	browser := testbed.NewBrowser(t, testbed.BrowserOptions{})
	start := func() *engine.Engine {
		t.Helper()
		eng := startEngine(t, engine.Config{Paths: paths, ProxyAddr: "127.0.0.1:0", Opener: browser})
		return eng
	}
	eng := start()
	ctx, stop := context.WithTimeout(context.Background(), 2*time.Minute)
	defer stop()
	if err := eng.Add(ctx, engine.AddRequest{Name: "partial", URL: srv.URL}); err != nil {
		t.Fatal(err)
	}
	if st := eng.Snapshot().Servers[0]; st.Auth != "no-auth" {
		t.Fatalf("added as %q, want no-auth: the probe must be let through for this test", st.Auth)
	}
	connect := func(eng *engine.Engine) *mcp.ClientSession {
		t.Helper()
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil).Connect(ctx,
			&mcp.StreamableClientTransport{Endpoint: eng.ProxyEndpoint("partial")}, nil)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}
	err := connect(eng).Ping(ctx, nil)
	if we, d := proxyStructured(t, err); we.Code != proxy.CodeAuthFailure || d.Subtype != proxy.SubtypeSignInRequired {
		t.Fatalf("ping without a token: code %d data %+v, want auth_failure/sign_in_required", we.Code, d)
	}
	if st := eng.Snapshot().Servers[0]; st.Auth != "oauth" || st.Cause != engine.CauseAuthRequired {
		t.Fatalf("after the 401: %s %s, want an OAuth server that needs sign-in", st.Auth, st.Cause)
	}

	eng.Close()
	eng = start()
	if err := eng.SignIn(ctx, "partial", false, nil); err != nil {
		t.Fatalf("sign in after a restart: %v", err)
	}
	cs := connect(eng)
	if err := cs.Ping(ctx, nil); err != nil {
		t.Errorf("ping after signing in: %v", err)
	}
	if got, err := proxyEcho(ctx, cs, "signed in"); err != nil || got != "signed in" {
		t.Errorf("call after signing in: %q, %v", got, err)
	}
	if err := eng.Logout(ctx, "partial"); err != nil {
		t.Fatal(err)
	}
	if err := eng.SignIn(ctx, "partial", false, nil); err != nil {
		t.Fatalf("sign in after a logout: %v", err)
	}
	if err := connect(eng).Ping(ctx, nil); err != nil {
		t.Errorf("ping after signing in again: %v", err)
	}
}
