//go:build soak

package soak

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/e2e"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// install is one installation of authkeeper (internal/e2e: private HOME and XDG directories, a private
// gnome-keyring, a fake xdg-open feeding the scripted browser, the real binary running `authkeeper
// serve`), with the soak's shorthands. Every output it or its CLI produced is kept for the token leak
// search. Safe for concurrent use.
type install struct {
	*e2e.Install
	t       *testing.T
	browser *testbed.Browser
	remote  *control.Remote
	paths   engine.Paths
}

// newEngine prepares an installation and starts `authkeeper serve` on it. It sets
// DBUS_SESSION_BUS_ADDRESS in this process (t.Setenv) so the test can read the keyring: not parallel.
func newEngine(t *testing.T) *install {
	t.Helper()
	in := e2e.NewInstall(t, e2e.Options{})
	return &install{Install: in, t: t, browser: in.Browser, remote: in.Remote, paths: in.Paths}
}

// start runs `authkeeper serve` again (after kill) and waits until its control API answers.
func (e *install) start() { e.t.Helper(); e.Start() }

// kill sends SIGKILL to the current `serve` process.
func (e *install) kill() { e.Serve().Kill() }

// endpoint is the proxy URL of server name, with the access key in the path.
func (e *install) endpoint(name string) string { return e.KeyedEndpoint(name) }

// key is the proxy's access key.
func (e *install) key() string { return e.Key() }

// cli runs the real binary with args in the installation's environment (see e2e.Install.CLI).
func (e *install) cli(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	r := e.CLI(ctx, nil, nil, args...)
	return r.Code, r.Stdout, r.Stderr
}

// add signs in to the MCP server at url as name through `authkeeper add` and the scripted browser.
func (e *install) add(name, url string, args ...string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if code, out, errOut := e.cli(ctx, append([]string{"add", url, "--name", name}, args...)...); code != 0 {
		e.t.Fatalf("authkeeper add %s: exit %d\n%s%s", name, code, out, errOut)
	}
}

// headersToken runs the headers helper for name and returns the access token it printed ("" on failure).
func (e *install) headersToken(name string) string {
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
func (e *install) audit() []engine.Event { return e.Audit() }

// outputsText is everything the installation's processes wrote that must not hold a token.
func (e *install) outputsText() string { return e.Outputs() }

// files returns the path and content of every regular file under the installation's directories.
func (e *install) files() map[string]string { return e.Files() }

// health asks the engine for its /healthz document.
func (e *install) health(ctx context.Context) (engine.Health, error) { return e.remote.Health(ctx) }

// countKind counts audit events of kind (for server, when not "").
func countKind(evs []engine.Event, kind engine.EventKind, server string) int {
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
