//go:build unix

package app

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
)

// TestServeRunsTheEventHookOfItsSettings: `serve` feeds its engine's events to the event hook that
// prefs.event_hook names. A static token that expires puts its server in needs-sign-in, and the hook's
// command gets the JSON document on stdin — server, event, instance — with no token in it; serve logs
// the delivery as an event_hook line.
func TestServeRunsTheEventHookOfItsSettings(t *testing.T) {
	paths := privateHome(t)
	out := filepath.Join(t.TempDir(), "events.jsonl")
	conf, err := keychain.NewConfigFile(paths.ConfigDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := keychain.DefaultSettings()
	s.Prefs.Store = "file"
	s.Prefs.EventHook = &keychain.EventHook{Command: []string{"sh", "-c", `cat >> "$0"; echo >> "$0"`, out}}
	if err := os.MkdirAll(paths.ConfigDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := conf.Save(s); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envInstance, "runner-7")
	stdout, stderr := &testbed.SyncBuffer{}, &testbed.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"authkeeper", "serve", "--proxy-addr", "127.0.0.1:0"}, env{stdout: stdout, stderr: stderr, getenv: os.Getenv})
	}()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(stdout.String(), "engine running"); {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", stderr)
		}
		time.Sleep(20 * time.Millisecond) // serve runs in its own goroutine
	}
	const token = "static-secret-token-0123456789"
	t.Setenv(envToken, token)
	expires := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339)
	if code, _, errOut := runCLI(t, "add", "http://127.0.0.1:9/mcp", "--name", "api", "--token-expires", expires); code != 0 {
		t.Fatalf("add: %d %s", code, errOut)
	}
	var doc map[string]any
	for deadline := time.Now().Add(20 * time.Second); ; {
		if b, err := os.ReadFile(out); err == nil && len(b) > 0 {
			if err := json.Unmarshal([]byte(strings.SplitN(string(b), "\n", 2)[0]), &doc); err != nil {
				t.Fatalf("the hook's document is not JSON: %v\n%s", err, b)
			}
			if strings.Contains(string(b), token) {
				t.Fatal("the hook's document holds the token")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hook's command never ran; serve's log:\n%s", stderr)
		}
		time.Sleep(50 * time.Millisecond) // the command runs in serve's hook goroutine
	}
	if doc["event"] != "needs_sign_in" || doc["server"] != "api" || doc["instance"] != "runner-7" {
		t.Errorf("hook document %v: want needs_sign_in for api from runner-7", doc)
	}
	waitLog(t, stderr, map[string]string{"event": eventHookLog})
}
