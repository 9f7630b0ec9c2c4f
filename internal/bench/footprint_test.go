//go:build linux

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/authkeeper/authkeeper/internal/e2e"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// footprintServers is how many servers the idle engine keeps (issue 8).
const footprintServers = 10

// TestFootprintBenchmark signs in to ten Go SDK MCP servers (1-hour tokens from the oidc-provider
// authorization server), then runs the real binary twice with that configuration and the same keyring —
// `authkeeper serve` headless, then the tray app on an Xvfb desktop — and measures each one's CPU time
// and resident memory over an idle window once it has settled. It fails if either process does not
// report every server healthy before and after its window. With AUTHKEEPER_BENCH_REPORT set, it writes
// bench-footprint.md next to that file.
func TestFootprintBenchmark(t *testing.T) {
	out := os.Getenv(reportEnv)
	settle, window := 10*time.Second, 60*time.Second
	if out == "" {
		settle, window = time.Second, 2*time.Second
	}
	bin := e2e.MustBinary(t)
	display := testbed.NewDisplay(t) // first: it sets DISPLAY and DBUS_SESSION_BUS_ADDRESS for the test
	watcher := testbed.NewWatcher(t, display.Bus)
	testbed.KeyringOn(t, display.Bus)
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{AccessTokenTTL: time.Hour})
	paths, env := homeDirs(t)
	signInServers(t, paths, as, footprintServers)
	env = append(env, "AUTHKEEPER_PROXY_ADDR=127.0.0.1:0")

	serve := exec.Command(bin, "serve")
	serve.Env = env // no DISPLAY
	p := testbed.StartProcess(t, "authkeeper serve", serve)
	p.WaitLine(t, "authkeeper ", 30*time.Second)
	allFresh(t, bin, env)
	time.Sleep(settle) // let start-up work (GC, keychain reads) finish before the window opens
	headless := observeIdle(t, "authkeeper serve", serve.Process.Pid, procCPU(serve.Process.Pid), window)
	allFresh(t, bin, env)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}

	tray := exec.Command(bin)
	tray.Env = append(env, display.Env()...)
	p = testbed.StartProcess(t, "authkeeper (tray)", tray)
	if banner := p.WaitLine(t, "authkeeper ", 30*time.Second); !strings.Contains(banner, "with tray") {
		t.Fatalf("banner %q: want the tray app", banner)
	}
	watcher.WaitItem(t, 30*time.Second)
	allFresh(t, bin, env)
	time.Sleep(settle)
	withTray := observeIdle(t, "authkeeper (tray)", tray.Process.Pid, procCPU(tray.Process.Pid), window)
	allFresh(t, bin, env)
	// A second launch opens the Status window in the running tray: fyne's event loop now runs, and
	// keeps running until Quit (see tray.mainLoop).
	second := exec.Command(bin)
	second.Env = tray.Env
	if out, err := second.CombinedOutput(); err != nil || !strings.Contains(string(out), "showed its status window") {
		t.Fatalf("second launch: %v\n%s", err, out)
	}
	time.Sleep(settle)
	withWindow := observeIdle(t, "authkeeper (tray, Status window open)", tray.Process.Pid, procCPU(tray.Process.Pid), window)
	allFresh(t, bin, env)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if out == "" {
		return
	}
	dir := filepath.Dir(out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bench-footprint.md"), footprintReport(settle, headless, withTray, withWindow), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", filepath.Join(dir, "bench-footprint.md"))
}

// signInServers starts n Go SDK MCP servers and signs an engine with paths in to each (the scripted
// browser completes the authorization server's login and consent), then stops the engine: its
// configuration and the keyring now hold n signed-in servers for the next process with paths.
func signInServers(t *testing.T, paths engine.Paths, as *testbed.AuthServer, n int) {
	t.Helper()
	eng, err := engine.New(engine.Config{Paths: paths, ProxyAddr: "127.0.0.1:0", Opener: testbed.NewBrowser(t, testbed.BrowserOptions{}), Proxy: proxy.FrontEnd, Control: control.FrontEnd})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	for i := range n {
		srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: as.Issuer, RequiredScopes: []string{"mcp:read"}})
		if err := eng.Add(context.Background(), engine.AddRequest{Name: fmt.Sprintf("s%02d", i), URL: srv.URL}); err != nil {
			t.Fatal(err)
		}
	}
}

// allFresh fails the test unless `authkeeper status --json` lists every server, each healthy.
func allFresh(t *testing.T, bin string, env []string) {
	t.Helper()
	cmd := exec.Command(bin, "status", "--json")
	cmd.Env = env
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("authkeeper status: %v\n%s", err, outb)
	}
	var h engine.Health
	if err := json.Unmarshal(outb, &h); err != nil {
		t.Fatalf("authkeeper status --json: %v\n%s", err, outb)
	}
	healthy := 0
	for _, s := range h.Servers {
		if s.State == "healthy" {
			healthy++
		}
	}
	if healthy != footprintServers || len(h.Servers) != footprintServers {
		t.Fatalf("%d of %d servers healthy, want %d: %s", healthy, len(h.Servers), footprintServers, outb)
	}
}
