package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// isolate points every user directory at a fresh temp dir. The runtime dir is kept short because a
// unix socket path is limited to about 100 bytes.
func isolate(t *testing.T) {
	t.Helper()
	home := t.TempDir()
	rt := shortRuntimeDir(t)
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("XDG_STATE_HOME", filepath.Join(home, ".state"))
	t.Setenv("XDG_RUNTIME_DIR", rt)
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	t.Setenv("AUTHKEEPER_PROXY_ADDR", "127.0.0.1:0")
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "") // no Secret Service: the engine warns and runs
}

// noTray is the UI of a build with a tray, for tests where it must not start.
func noTray(t *testing.T) UI {
	return func(context.Context, *engine.Engine) error { t.Error("the tray started"); return nil }
}

// startServe runs the default command with ui in the background and returns its output once
// it has printed its addresses, plus a function that stops it and returns the exit code.
func startServe(t *testing.T, ui UI) (out *testbed.SyncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out = &testbed.SyncBuffer{}
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"authkeeper"}, env{stdout: out, stderr: out, getenv: os.Getenv, ui: ui})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "config:") {
		select {
		case c := <-code:
			cancel()
			t.Fatalf("authkeeper exited with %d before printing its addresses:\n%s", c, out)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no addresses printed within 10s:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var once sync.Once
	var result int
	stop = func() int {
		once.Do(func() { cancel(); result = <-code })
		return result
	}
	t.Cleanup(func() { stop() })
	return out, stop
}

// field returns the value printed after "name:" in the serve banner.
func field(t *testing.T, out, name string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %q line in output:\n%s", name, out)
	return ""
}

// TestHeadlessBuildServesWithoutATrayEvenWithADisplay: the headless build (-tags headless) passes no UI;
// with a display present it still serves the engine, and says why.
func TestHeadlessBuildServesWithoutATrayEvenWithADisplay(t *testing.T) {
	isolate(t)
	t.Setenv("DISPLAY", ":0")
	out, stop := startServe(t, nil)
	if s := out.String(); !strings.Contains(s, "this build has no tray (headless), running the engine (authkeeper serve)") ||
		!strings.HasPrefix(field(t, s, "proxy"), "http://127.0.0.1:") {
		t.Errorf("output:\n%s\nwant the headless-build notice and the proxy's address", s)
	}
	if code := stop(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

// TestDefaultCommandWithoutDisplayServesHeadlessAndPrintsAddresses: a build with a tray, on a machine
// without a display, serves headless and never starts the tray.
func TestDefaultCommandWithoutDisplayServesHeadlessAndPrintsAddresses(t *testing.T) {
	isolate(t)
	out, stop := startServe(t, noTray(t))
	s := out.String()
	if !strings.Contains(s, "no display found, running the headless engine (authkeeper serve)") {
		t.Errorf("missing the one-line headless notice:\n%s", s)
	}
	proxy := strings.TrimSuffix(field(t, s, "proxy"), "/mcp/<server>")
	if !strings.HasPrefix(proxy, "http://127.0.0.1:") {
		t.Errorf("proxy = %q, want a 127.0.0.1 URL", proxy)
	}
	if got, want := field(t, s, "config"), filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "authkeeper", "config.json"); got != want {
		t.Errorf("config = %q, want %q", got, want)
	}
	sock := field(t, s, "control")
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatalf("control socket: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket mode = %v, want 0600", fi.Mode().Perm())
	}

	h, err := control.NewRemote(sock).Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != "ok" || h.ProxyURL != proxy {
		t.Errorf("healthz = %+v, want status ok and proxy %s", h, proxy)
	}

	// The proxy refuses a caller without the per-install key, and answers a keyed call for an unknown
	// server with a JSON-RPC error for that call naming the fix, not a bare 404.
	call := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	resp, err := http.Post(proxy+"/mcp/nosuch", "application/json", strings.NewReader(call))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("call without the access key: %d, want 403", resp.StatusCode)
	}
	key, err := os.ReadFile(filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "authkeeper", "proxy.key"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err = http.Post(proxy+"/"+strings.TrimSpace(string(key))+"/mcp/nosuch", "application/json", strings.NewReader(call))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rpc struct {
		ID    any `json:"id"`
		Error struct {
			Message string         `json:"message"`
			Data    map[string]any `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &rpc); err != nil {
		t.Fatalf("proxy answer %d %s (%v)", resp.StatusCode, body, err)
	}
	if rpc.ID != float64(1) || rpc.Error.Data["type"] != "not_configured" || rpc.Error.Data["server"] != "nosuch" ||
		!strings.Contains(rpc.Error.Data["action"].(string), "authkeeper add") {
		t.Errorf("proxy error = %s", body)
	}

	if code := stop(); code != 0 {
		t.Errorf("exit code after cancel = %d, want 0\n%s", code, out)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("control socket left behind after shutdown: %v", err)
	}
}

func TestStatusCommand(t *testing.T) {
	isolate(t)
	var out, errOut bytes.Buffer
	e := env{stdout: &out, stderr: &errOut, getenv: os.Getenv}
	if code := run(context.Background(), []string{"authkeeper", "status"}, e); code != 1 {
		t.Errorf("status with no engine: exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "authkeeper is not running") {
		t.Errorf("status with no engine said %q", errOut.String())
	}

	startServe(t, noTray(t))
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"authkeeper", "status"}, e); code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "0 server(s)") {
		t.Errorf("status printed %q", out.String())
	}
}

func TestSecondEngineRefusesToStart(t *testing.T) {
	isolate(t)
	startServe(t, noTray(t))
	var out bytes.Buffer
	code := run(context.Background(), []string{"authkeeper", "serve"}, env{stdout: &out, stderr: &out, getenv: os.Getenv})
	if code != 1 || !strings.Contains(out.String(), "another authkeeper is already running") {
		t.Errorf("second serve: exit %d, output %q", code, out.String())
	}
}

func TestUnknownCommandExits2(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"authkeeper", "frobnicate"}, env{stdout: &out, stderr: &out, getenv: os.Getenv}); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(out.String(), `unknown command "frobnicate"`) {
		t.Errorf("output %q", out.String())
	}
}
