//go:build soak

package soak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// builtDir is where binary built authkeeper, removed by TestSoak; "" with $AUTHKEEPER_BIN.
var builtDir string

// binary builds the real authkeeper once per test process (or uses $AUTHKEEPER_BIN).
var binary = sync.OnceValues(func() (string, error) {
	if b := os.Getenv("AUTHKEEPER_BIN"); b != "" {
		return b, nil
	}
	dir, err := os.MkdirTemp("", "aksoak-bin")
	if err != nil {
		return "", err
	}
	builtDir = dir
	bin := filepath.Join(dir, "authkeeper")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/authkeeper/authkeeper").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
})

// engine is one installation of authkeeper: private HOME and XDG directories, a private
// gnome-keyring, a fake xdg-open that hands sign-in URLs to a scripted browser, and the real binary
// running `authkeeper serve`. Every output it or its CLI produced is kept for the token leak search.
// Safe for concurrent use.
type engine struct {
	t       *testing.T
	bin     string
	env     []string
	home    string
	paths   app.Paths
	keyring *testbed.Keyring
	browser *testbed.Browser
	remote  *app.Remote

	mu      sync.Mutex
	runs    []*testbed.Process // every `serve` run, oldest first
	outputs []string           // CLI outputs (stdout+stderr) that must never hold a token
	proxy   app.ProxyInfo
}

// newEngine prepares an installation and starts `authkeeper serve` on it. It sets
// DBUS_SESSION_BUS_ADDRESS in this process (t.Setenv) so the test can read the keyring: not parallel.
func newEngine(t *testing.T) *engine {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	kr := testbed.StartKeyring(t)
	home := t.TempDir()
	rt, err := os.MkdirTemp("/tmp", "aksoak") // short: it holds the control socket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	fakeBin := filepath.Join(home, "bin")
	fifo := filepath.Join(rt, "open.fifo")
	if err := os.MkdirAll(fakeBin, 0o700); err != nil {
		t.Fatal(err)
	}
	// pkg/browser runs the first of xdg-open, x-www-browser, www-browser on PATH and waits for it.
	script := "#!/bin/sh\nprintf '%s\\n' \"$1\" > \"$AK_SOAK_OPEN_FIFO\"\n"
	if err := os.WriteFile(filepath.Join(fakeBin, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	e := &engine{t: t, bin: bin, home: home, keyring: kr, browser: testbed.NewBrowser(t, testbed.BrowserOptions{})}
	vars := map[string]string{
		"HOME":                        home,
		"XDG_CONFIG_HOME":             filepath.Join(home, ".config"),
		"XDG_STATE_HOME":              filepath.Join(home, ".local", "state"),
		"XDG_DATA_HOME":               filepath.Join(home, ".local", "share"),
		"XDG_CACHE_HOME":              filepath.Join(home, ".cache"),
		"XDG_RUNTIME_DIR":             rt,
		"PATH":                        fakeBin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"AK_SOAK_OPEN_FIFO":           fifo,
		"DISPLAY":                     "",
		"WAYLAND_DISPLAY":             "",
		"CLAUDE_CODE_MCP_SERVER_NAME": "",
		"AUTHKEEPER_PROXY_ADDR":       "",
		"AUTHKEEPER_STORE":            "",
	}
	for _, kv := range kr.Bus.Env() {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "XDG_") {
			if _, set := vars[k]; !set {
				e.env = append(e.env, kv)
			}
		}
	}
	for k, v := range vars {
		e.env = append(e.env, k+"="+v)
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", vars["DBUS_SESSION_BUS_ADDRESS"])
	e.paths, err = app.DefaultPaths(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	// os.UserConfigDir reads this process's environment; the engine's is XDG_CONFIG_HOME above.
	e.paths.ConfigDir = filepath.Join(vars["XDG_CONFIG_HOME"], "authkeeper")
	e.remote = app.NewRemote(e.paths.ControlSocket())
	e.forwardOpens(fifo)
	e.start()
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			for _, ev := range e.audit() {
				fmt.Fprintf(&b, "%s %s %s trigger=%s outcome=%s %s\n", ev.Time.Format("15:04:05.000"), ev.Kind, ev.Server, ev.Trigger, ev.Outcome, ev.Message)
			}
			t.Logf("--- audit log ---\n%s", b.String())
		}
	})
	return e
}

// forwardOpens reads the URLs the fake xdg-open writes to fifo and opens each in the scripted browser.
func (e *engine) forwardOpens(fifo string) {
	// O_RDWR: the reader never sees EOF between writers and its open never blocks.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if err := e.browser.Open(strings.TrimSpace(sc.Text())); err != nil {
				e.t.Logf("browser: %v", err)
			}
		}
	}()
	e.t.Cleanup(func() { f.Close(); <-done })
}

// start runs `authkeeper serve` and waits until its control API answers.
func (e *engine) start() {
	e.t.Helper()
	cmd := exec.Command(e.bin, "serve", "--proxy-addr", "127.0.0.1:0")
	cmd.Env = e.env
	e.mu.Lock()
	name := fmt.Sprintf("authkeeper serve (run %d)", len(e.runs)+1)
	e.mu.Unlock()
	p := testbed.StartProcess(e.t, name, cmd)
	p.WaitLine(e.t, "  control: ", 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := e.remote.Proxy(ctx)
	if err != nil {
		e.t.Fatalf("control API: %v", err)
	}
	e.mu.Lock()
	e.runs = append(e.runs, p)
	e.proxy = info
	e.mu.Unlock()
}

// serve is the current `serve` process.
func (e *engine) serve() *testbed.Process {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.runs[len(e.runs)-1]
}

// kill sends SIGKILL to the current `serve` process.
func (e *engine) kill() { e.serve().Kill() }

// endpoint is the proxy URL of server name, with the access key in the path.
func (e *engine) endpoint(name string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.proxy.URL + "/" + e.proxy.Key + "/mcp/" + name
}

// key is the proxy's access key.
func (e *engine) key() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.proxy.Key
}

// cli runs the real binary with args in the installation's environment. Its output is kept for the
// leak search unless secret says it is meant to hold a token (the headers helper's stdout).
func (e *engine) cli(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = e.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		code = -1
		errb.WriteString(err.Error())
	}
	e.mu.Lock()
	if len(args) > 0 && args[0] == "headers" {
		e.outputs = append(e.outputs, errb.String())
	} else {
		e.outputs = append(e.outputs, out.String()+errb.String())
	}
	e.mu.Unlock()
	return code, out.String(), errb.String()
}

// add signs in to the MCP server at url as name through `authkeeper add` and the scripted browser.
func (e *engine) add(name, url string, args ...string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if code, out, errOut := e.cli(ctx, append([]string{"add", url, "--name", name}, args...)...); code != 0 {
		e.t.Fatalf("authkeeper add %s: exit %d\n%s%s", name, code, out, errOut)
	}
}

// headersToken runs the headers helper for name and returns the access token it printed ("" on failure).
func (e *engine) headersToken(name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, out, _ := e.cli(ctx, "headers", name)
	if code != 0 {
		return ""
	}
	var h map[string]string
	if json.Unmarshal([]byte(out), &h) != nil {
		return ""
	}
	return strings.TrimPrefix(h["Authorization"], "Bearer ")
}

// audit reads every audit event (rotated files first).
func (e *engine) audit() []app.Event {
	var evs []app.Event
	files, _ := filepath.Glob(filepath.Join(e.paths.StateDir, "audit.jsonl.*"))
	files = append(files, filepath.Join(e.paths.StateDir, "audit.jsonl"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			var ev app.Event
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Kind != "" {
				evs = append(evs, ev)
			}
		}
	}
	return evs
}

// outputsText is everything the installation's processes wrote that must not hold a token: every
// `serve` run's stdout and stderr, and every CLI output but the headers helper's stdout.
func (e *engine) outputsText() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, p := range e.runs {
		b.WriteString(p.Output())
	}
	for _, o := range e.outputs {
		b.WriteString(o)
	}
	return b.String()
}

// files returns the path and content of every regular file under the installation's directories (the
// config, state and runtime directories; the keyring lives elsewhere).
func (e *engine) files() map[string]string {
	out := map[string]string{}
	for _, dir := range []string{e.home, e.paths.RuntimeDir} {
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			if data, err := os.ReadFile(p); err == nil {
				out[p] = string(data)
			}
			return nil
		})
	}
	return out
}

// health asks the engine for its /healthz document.
func (e *engine) health(ctx context.Context) (app.Health, error) { return e.remote.Health(ctx) }

// countKind counts audit events of kind (for server, when not "").
func countKind(evs []app.Event, kind app.EventKind, server string) int {
	n := 0
	for _, ev := range evs {
		if ev.Kind == kind && (server == "" || ev.Server == server) {
			n++
		}
	}
	return n
}

// countPrefix counts the lines that start with prefix.
func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}
