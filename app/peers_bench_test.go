package app

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/oauth"
)

// Files named peers_*_test.go hold the tests that start real peers (internal/testbed: gnome-keyring
// on a private D-Bus, oidc-provider, the Go and TypeScript SDK MCP servers, the real binary) and
// their benches: this one (the engine bench and what observes it), peers_cli_bench_test.go and
// peers_proxy_bench_test.go. The package's other test files start none; tempPaths and startEngine
// below serve both kinds. The engine's logic is unit-tested without peers, on fake time, in
// app/engine.

// tempPaths returns private directories for one engine; the runtime dir is short for the unix socket.
func tempPaths(t *testing.T) engine.Paths {
	t.Helper()
	home := t.TempDir()
	rt := shortRuntimeDir(t)
	return engine.Paths{ConfigDir: filepath.Join(home, "config"), StateDir: filepath.Join(home, "state"), RuntimeDir: rt}
}

// bench is an engine signed in to a real MCP server through the real AS, storing in the real keyring.
type bench struct {
	keyring *testbed.Keyring
	as      *testbed.AuthServer
	srv     *testbed.MCPServer
	browser *testbed.Browser
	eng     *engine.Engine
	paths   engine.Paths
}

// benchOptions picks the real peers of a bench and where its engine keeps its files.
type benchOptions struct {
	AS   testbed.AuthServerOptions
	TS   bool // the TypeScript SDK server instead of the Go SDK one
	JSON bool // the server answers POSTs with application/json instead of SSE
	// Stateless runs the Go SDK server stateless, the mode in which it speaks protocol 2026-07-28.
	Stateless bool
	Scopes    []string // the server's required scopes; default mcp:read
	// Home gives the test a private HOME and XDG directories and the engine their default paths, so
	// that the command line (run) and the real binary find it; without it the engine gets private
	// directories of its own. Find the binary (e2e.MustBinary) before: building needs the real HOME.
	Home bool
}

// newBench starts the real peers opts names — the keyring, the AS, an MCP server — and an engine
// signed in through a real sign-in to server "bench", serving the proxy on a free loopback port.
// Opaque tokens make the server introspect every request, so a revoked token is refused at once.
func newBench(t *testing.T, opts benchOptions) *bench {
	t.Helper()
	b := &bench{keyring: testbed.StartKeyring(t), as: testbed.NewAuthServer(t, opts.AS)}
	if opts.Home {
		b.paths = privateHome(t)
	} else {
		b.paths = tempPaths(t)
	}
	mo := testbed.MCPServerOptions{Issuer: b.as.Issuer, JSONResponse: opts.JSON, Stateless: opts.Stateless, RequiredScopes: opts.Scopes, Opaque: opts.AS.Opaque}
	if mo.RequiredScopes == nil {
		mo.RequiredScopes = []string{"mcp:read"}
	}
	if mo.Opaque {
		mo.IntrospectionClientID, mo.IntrospectionClientSecret = b.as.IntrospectionClient()
	}
	if opts.TS {
		b.srv = testbed.TSMCPServer(t, mo)
	} else {
		b.srv = testbed.GoMCPServer(t, mo)
	}
	b.start(t)
	return b
}

// start runs an engine on b.paths with a scripted browser, checks it came up without a warning (the
// keyring works), and adds b.srv as server "bench" through a real sign-in.
func (b *bench) start(t *testing.T) {
	t.Helper()
	b.browser = testbed.NewBrowser(t, testbed.BrowserOptions{})
	eng := startEngine(t, engine.Config{Paths: b.paths, ProxyAddr: "127.0.0.1:0", Opener: b.browser})
	if w := eng.Warning(); w != "" {
		t.Fatalf("engine warning with a working keyring: %s", w)
	}
	if err := eng.Add(context.Background(), engine.AddRequest{Name: "bench", URL: b.srv.URL}); err != nil {
		t.Fatalf("add: %v", err)
	}
	b.eng = eng
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// startEngine starts an engine with cfg and closes it when the test ends.
func startEngine(t *testing.T, cfg engine.Config) *engine.Engine {
	t.Helper()
	eng, err := newEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// waitEvent waits for an event of kind for server "bench" on ch and returns it.
func waitEvent(t *testing.T, ch <-chan engine.Event, kind engine.EventKind, timeout time.Duration) engine.Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event stream closed while waiting for %s", kind)
			}
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event within %v", kind, timeout)
		}
	}
}

// waitEventFor waits for an event of kind for server on ch.
func waitEventFor(t *testing.T, ch <-chan engine.Event, kind engine.EventKind, server string, timeout time.Duration) engine.Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("event stream closed while waiting for %s", kind)
			}
			if ev.Kind == kind && ev.Server == server {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event for %s within %v", kind, server, timeout)
		}
	}
}

// serverStatus returns server name's line of eng's snapshot.
func serverStatus(t *testing.T, eng *engine.Engine, name string) engine.ServerStatus {
	t.Helper()
	for _, st := range eng.Snapshot().Servers {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("no server %s", name)
	return engine.ServerStatus{}
}

func hasQuirk(qs []oauth.Quirk, q oauth.Quirk) bool {
	for _, x := range qs {
		if x == q {
			return true
		}
	}
	return false
}

// auditEvents reads the audit log.
func auditEvents(t *testing.T, paths engine.Paths) []engine.Event {
	t.Helper()
	f, err := os.Open(filepath.Join(paths.StateDir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []engine.Event
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev engine.Event
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			out = append(out, ev)
		}
	}
	return out
}

// auditKinds counts the audit log's events of kind for server.
func auditKinds(t *testing.T, paths engine.Paths, kind engine.EventKind, server string) int {
	t.Helper()
	n := 0
	for _, ev := range auditEvents(t, paths) {
		if ev.Kind == kind && ev.Server == server {
			n++
		}
	}
	return n
}

// shortRuntimeDir is a new directory for XDG_RUNTIME_DIR / Paths.RuntimeDir, removed in cleanup. Not
// t.TempDir: it holds the control socket, and a unix socket path is limited to 108 bytes.
func shortRuntimeDir(t *testing.T) string {
	t.Helper()
	rt, err := os.MkdirTemp("/tmp", "akrt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	return rt
}
