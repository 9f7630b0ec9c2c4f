//go:build !windows

package hook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/google/go-cmp/cmp"
)

// recorder is a real program for the hook to run: a shell script that writes its stdin and its
// environment's AUTHKEEPER_* to files in dir. Its first run fails with status 3 when failFirst.
func recorder(t *testing.T, failFirst bool) (script, dir string) {
	t.Helper()
	dir = testbed.TempDir(t)
	fail := ""
	if failFirst {
		fail = `[ -e "$1/tried" ] || { : > "$1/tried"; exit 3; }` + "\n"
	}
	script = filepath.Join(dir, "on-call.sh")
	body := "#!/bin/sh\n" + fail +
		`cat > "$1/stdin.json"` + "\n" +
		`printf '%s %s' "$AUTHKEEPER_EVENT" "$AUTHKEEPER_SERVER" > "$1/env"` + "\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	return script, dir
}

func newCommandHook(t *testing.T, argv []string, change func(*Config)) (*Hook, *fakeClock, *logRecorder) {
	t.Helper()
	clock, logs := newFakeClock(), newLogRecorder()
	cfg := Config{Command: argv, Instance: "runner-7", Clock: clock, Logf: logs.logf, Rand: func() float64 { return 0.5 }}
	if change != nil {
		change(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h, clock, logs
}

func TestHookCommandGetsTheDocumentOnStdinAndTheKindInItsEnvironment(t *testing.T) {
	script, dir := recorder(t, false)
	h, clock, logs := newCommandHook(t, []string{script, dir}, nil)
	h.Feed(engine.Event{Time: clock.Now(), Kind: engine.EventRevoked, Server: "github", Message: "refused"})
	logs.waitFor(t, `delivered the revoked event for "github" to the command on-call.sh`)
	stdin, err := os.ReadFile(filepath.Join(dir, "stdin.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(stdin, &doc); err != nil {
		t.Fatalf("stdin %q: %v", stdin, err)
	}
	want := map[string]any{"event": "revoked", "server": "github", "time": "2026-03-01T12:00:00Z",
		"message": "refused", "instance": "runner-7", "version": 1.0,
		"text": "authkeeper on runner-7: github refused its token; someone must sign in again: refused"}
	if diff := cmp.Diff(want, doc); diff != "" {
		t.Errorf("stdin (-want +got):\n%s", diff)
	}
	if env, _ := os.ReadFile(filepath.Join(dir, "env")); string(env) != "revoked github" {
		t.Errorf("AUTHKEEPER_EVENT and AUTHKEEPER_SERVER = %q", env)
	}
}

func TestHookRetriesAFailingCommand(t *testing.T) {
	script, dir := recorder(t, true)
	h, clock, logs := newCommandHook(t, []string{script, dir}, nil)
	h.Feed(engine.Event{Time: clock.Now(), Kind: engine.EventNeedsSignIn, Server: "github"})
	line := logs.nextLine(t)
	if !strings.Contains(line, "exit status 3; retrying in 1s") {
		t.Fatalf("after a failed run: %q", line)
	}
	clock.waitPending(t, 1)
	clock.Advance(time.Second)
	logs.waitFor(t, `delivered the needs_sign_in event for "github"`)
	if _, err := os.Stat(filepath.Join(dir, "stdin.json")); err != nil {
		t.Errorf("the second run left no document: %v", err)
	}
}

func TestHookKillsACommandThatRunsPastTheTimeout(t *testing.T) {
	dir := testbed.TempDir(t)
	script := filepath.Join(dir, "hang.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 60\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	h, clock, logs := newCommandHook(t, []string{script}, func(c *Config) { c.Timeout, c.Retries = 200*time.Millisecond, -1 })
	start := time.Now()
	h.Feed(engine.Event{Time: clock.Now(), Kind: engine.EventNeedsSignIn, Server: "github"})
	line := logs.waitFor(t, "gave up")
	if !strings.Contains(line, "killed: it ran past the timeout") {
		t.Errorf("give-up line %q", line)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the hung command held the hook %s", d)
	}
}
