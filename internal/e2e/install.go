// Package e2e runs the real authkeeper binary the way a user installs it: private HOME and XDG
// directories, a private gnome-keyring on a private D-Bus, a fake xdg-open that hands every URL the
// app opens to the bench's scripted browser, and `authkeeper serve` with its proxy on a free port.
// Tests drive it through its own command line and control API, and read its audit log.
//
// It is a test helper package: nothing in the product imports it.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// Binary returns the authkeeper binary under test: $AUTHKEEPER_BIN (what `make test` sets), else one
// built once per test process into a temporary directory.
var Binary = sync.OnceValues(func() (string, error) {
	if b := os.Getenv("AUTHKEEPER_BIN"); b != "" {
		return b, nil
	}
	dir, err := os.MkdirTemp("", "ake2e-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "authkeeper")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/authkeeper/authkeeper").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
})

// MustBinary is Binary for a test, which it fails when the build does. Without $AUTHKEEPER_BIN, call it
// before the test moves HOME: the go command finds its module and build caches there.
func MustBinary(t testing.TB) string {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Options configures NewInstall. The zero value is a keychain-backed installation.
type Options struct {
	// ServeArgs are added to `authkeeper serve` (e.g. --client-metadata-url). Default none.
	ServeArgs []string
	// Env are extra KEY=VALUE variables for every process of the installation. Default none.
	Env []string
	// Browser configures the scripted browser. Default: approve everything.
	Browser testbed.BrowserOptions
	// OpenerBlocks makes the fake xdg-open behave as xdg-open's generic mode does when it starts the
	// browser in the foreground: it hands the URL on, then does not exit (for a minute). pkg/browser
	// waits for it. Default false: it exits at once.
	OpenerBlocks bool
}

// Install is one installation of authkeeper run by a test. Safe for concurrent use.
type Install struct {
	t       testing.TB
	opts    Options
	bin     string
	env     []string
	home    string
	Paths   engine.Paths
	Keyring *testbed.Keyring
	Browser *testbed.Browser
	Remote  *control.Remote

	mu      sync.Mutex
	runs    []*testbed.Process
	outputs []string
	proxy   control.ProxyInfo
}

// NewInstall prepares an installation and starts `authkeeper serve` on it. It sets
// DBUS_SESSION_BUS_ADDRESS in this process (t.Setenv) so the test can read the keyring: not parallel.
func NewInstall(t *testing.T, opts Options) *Install {
	t.Helper()
	if harnessUnsupported != "" {
		t.Skip(harnessUnsupported)
	}
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	kr := testbed.StartKeyring(t)
	home := t.TempDir()
	rt, err := os.MkdirTemp("/tmp", "ake2e") // short: it holds the control socket
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
	script := "#!/bin/sh\nprintf '%s\\n' \"$1\" > \"$AK_E2E_OPEN_FIFO\"\n"
	if opts.OpenerBlocks {
		script += "exec sleep 60\n"
	}
	if err := os.WriteFile(filepath.Join(fakeBin, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mkfifo(fifo); err != nil {
		t.Fatal(err)
	}
	in := &Install{t: t, opts: opts, bin: bin, home: home, Keyring: kr, Browser: testbed.NewBrowser(t, opts.Browser)}
	vars := map[string]string{
		"HOME":                        home,
		"XDG_CONFIG_HOME":             filepath.Join(home, ".config"),
		"XDG_STATE_HOME":              filepath.Join(home, ".local", "state"),
		"XDG_DATA_HOME":               filepath.Join(home, ".local", "share"),
		"XDG_CACHE_HOME":              filepath.Join(home, ".cache"),
		"XDG_RUNTIME_DIR":             rt,
		"PATH":                        fakeBin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"AK_E2E_OPEN_FIFO":            fifo,
		"DISPLAY":                     "",
		"WAYLAND_DISPLAY":             "",
		"CLAUDE_CODE_MCP_SERVER_NAME": "",
		"AUTHKEEPER_PROXY_ADDR":       "",
		"AUTHKEEPER_STORE":            "",
		"AUTHKEEPER_CLIENT_SECRET":    "",
		"AUTHKEEPER_TOKEN":            "",
	}
	for _, kv := range kr.Bus.Env() {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	for _, kv := range opts.Env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "XDG_") {
			if _, set := vars[k]; !set {
				in.env = append(in.env, kv)
			}
		}
	}
	for k, v := range vars {
		in.env = append(in.env, k+"="+v)
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", vars["DBUS_SESSION_BUS_ADDRESS"])
	in.Paths, err = engine.DefaultPaths(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	// os.UserConfigDir reads this process's environment; the installation's is XDG_CONFIG_HOME above.
	in.Paths.ConfigDir = filepath.Join(vars["XDG_CONFIG_HOME"], "authkeeper")
	in.Remote = control.NewOwnerRemote(in.Paths) // whichever serve run owns now
	in.forwardOpens(fifo)
	in.Start()
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			for _, ev := range in.Audit() {
				fmt.Fprintf(&b, "%s %s %s trigger=%s outcome=%s %s\n", ev.Time.Format("15:04:05.000"), ev.Kind, ev.Server, ev.Trigger, ev.Outcome, ev.Message)
			}
			t.Logf("--- audit log ---\n%s", b.String())
		}
	})
	return in
}

// forwardOpens reads the URLs the fake xdg-open writes to fifo and opens each in the scripted browser.
func (in *Install) forwardOpens(fifo string) {
	// O_RDWR: the reader never sees EOF between writers and its open never blocks.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		in.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if err := in.Browser.Open(strings.TrimSpace(sc.Text())); err != nil {
				in.t.Logf("browser: %v", err)
			}
		}
	}()
	in.t.Cleanup(func() { f.Close(); <-done })
}

// Start runs `authkeeper serve` and waits until its control API answers.
func (in *Install) Start() {
	in.t.Helper()
	args := append([]string{"serve", "--proxy-addr", "127.0.0.1:0"}, in.opts.ServeArgs...)
	cmd := exec.Command(in.bin, args...)
	cmd.Env = in.env
	in.mu.Lock()
	name := fmt.Sprintf("authkeeper serve (run %d)", len(in.runs)+1)
	in.mu.Unlock()
	p := testbed.StartProcess(in.t, name, cmd)
	p.WaitLine(in.t, "  control: ", 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := in.Remote.Proxy(ctx)
	if err != nil {
		in.t.Fatalf("control API: %v", err)
	}
	in.mu.Lock()
	in.runs = append(in.runs, p)
	in.proxy = info
	in.mu.Unlock()
}

// Serve is the current `serve` process.
func (in *Install) Serve() *testbed.Process {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.runs[len(in.runs)-1]
}

// Endpoint is the proxy URL of server name (the access key goes in a header: see Key).
func (in *Install) Endpoint(name string) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.proxy.URL + "/mcp/" + name
}

// Key is the proxy's access key.
func (in *Install) Key() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.proxy.Key
}

// Result is what one CLI run did.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// CLI runs the real binary with args (and stdin, when not nil) in the installation's environment,
// with extra KEY=VALUE variables. Its output is kept for LeakText unless args[0] is "headers", whose
// stdout is meant to hold a token.
func (in *Install) CLI(ctx context.Context, stdin io.Reader, env []string, args ...string) Result {
	cmd := exec.CommandContext(ctx, in.bin, args...)
	cmd.Env = append(append([]string(nil), in.env...), env...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.Code = exit.ExitCode()
	case err != nil:
		r.Code = -1
		r.Stderr += err.Error()
	}
	in.mu.Lock()
	if len(args) > 0 && args[0] == "headers" {
		in.outputs = append(in.outputs, r.Stderr)
	} else {
		in.outputs = append(in.outputs, r.Stdout+r.Stderr)
	}
	in.mu.Unlock()
	return r
}

// MustCLI is CLI that fails the test on a non-zero exit.
func (in *Install) MustCLI(env []string, args ...string) Result {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r := in.CLI(ctx, nil, env, args...)
	if r.Code != 0 {
		in.t.Fatalf("authkeeper %s: exit %d\n%s%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// Audit reads every audit event (rotated files first).
func (in *Install) Audit() []engine.Event {
	var evs []engine.Event
	files, _ := filepath.Glob(filepath.Join(in.Paths.StateDir, "audit.jsonl.*"))
	files = append(files, filepath.Join(in.Paths.StateDir, "audit.jsonl"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			var ev engine.Event
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Kind != "" {
				evs = append(evs, ev)
			}
		}
	}
	return evs
}

// CountEvents counts audit events of kind for server ("" for any server).
func (in *Install) CountEvents(kind engine.EventKind, server string) int {
	n := 0
	for _, ev := range in.Audit() {
		if ev.Kind == kind && (server == "" || ev.Server == server) {
			n++
		}
	}
	return n
}

// LeakText is everything the installation's processes wrote that must never hold a token: Outputs and
// the content of every file of Files.
func (in *Install) LeakText() string {
	var b strings.Builder
	b.WriteString(in.Outputs())
	for _, data := range in.Files() {
		b.WriteString(data)
	}
	return b.String()
}

// Outputs is every `serve` run's output and every CLI output but the headers helper's stdout.
func (in *Install) Outputs() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	var b strings.Builder
	for _, p := range in.runs {
		b.WriteString(p.Output())
	}
	for _, o := range in.outputs {
		b.WriteString(o)
	}
	return b.String()
}

// Files returns the path and content of every regular file under the installation's home and runtime
// directories (the keyring lives elsewhere).
func (in *Install) Files() map[string]string {
	out := map[string]string{}
	for _, dir := range []string{in.home, in.Paths.RuntimeDir} {
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

// Env is the environment every process of the installation runs with.
func (in *Install) Env() []string { return append([]string(nil), in.env...) }

// Bin is the authkeeper binary under test.
func (in *Install) Bin() string { return in.bin }

// KeyedEndpoint is the proxy URL of server name with the access key in the path, as clients that
// cannot set headers use it.
func (in *Install) KeyedEndpoint(name string) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.proxy.URL + "/" + in.proxy.Key + "/mcp/" + name
}

// Status returns the running engine's snapshot.
func (in *Install) Status(ctx context.Context) (engine.Snapshot, error) { return in.Remote.Status(ctx) }

// HeadersToken runs the headers helper for name and returns the access token it printed; the test
// fails if it exits non-zero.
func (in *Install) HeadersToken(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := in.CLI(ctx, nil, nil, "headers", name)
	var h map[string]string
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &h) != nil {
		t.Fatalf("authkeeper headers %s: exit %d: %s", name, r.Code, r.Stderr)
	}
	return strings.TrimPrefix(h["Authorization"], "Bearer ")
}
