package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
)

// TestAnInterruptedRefreshIsAnnouncedOnceAcrossProcesses: a record left with a refresh in flight is
// announced (needs_sign_in at load) by the first engine that loads it — a command's temporary engine,
// say — and not again by the next engine of the same installation, since the audit log already has
// that episode's announcement. A later episode (a newer refresh start) is announced again.
func TestAnInterruptedRefreshIsAnnouncedOnceAcrossProcesses(t *testing.T) {
	dir := testbed.TempDir(t)
	p := Paths{ConfigDir: filepath.Join(dir, "config"), StateDir: filepath.Join(dir, "state"), RuntimeDir: filepath.Join(dir, "run")}
	if err := p.Ensure(); err != nil {
		t.Fatal(err)
	}
	conf, err := keychain.NewConfigFile(p.ConfigDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := keychain.DefaultSettings()
	s.Servers = []keychain.Server{{Name: "api", URL: "https://mcp.example/mcp"}}
	if err := conf.Save(s); err != nil {
		t.Fatal(err)
	}
	store := keychain.NewMemoryStore(nil)
	put := func(started time.Time) {
		t.Helper()
		if _, err := store.Put("api", keychain.Record{AccessToken: "at", RefreshToken: "rt", TokenType: "Bearer",
			Expiry: time.Now().Add(time.Hour), RefreshStarted: started,
			Binding: keychain.Binding{ServerURL: "https://mcp.example/mcp", ClientID: "c", TokenEndpoint: "https://as.example/token"}}); err != nil {
			t.Fatal(err)
		}
	}
	announcements := func() int {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(p.StateDir, "audit.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(b), `"kind":"needs_sign_in"`)
	}
	run := func() {
		t.Helper()
		e, err := New(Config{Paths: p, NoProxy: true, Store: store})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		if st := e.Snapshot().Servers[0]; st.State != StateNeedsSignIn || st.Cause != CauseRefreshInterrupted {
			t.Fatalf("loaded in %s/%s, want needs-sign-in after an interrupted refresh", st.State, st.Cause)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	put(time.Now().Add(-time.Minute))
	run()
	run()
	if n := announcements(); n != 1 {
		t.Fatalf("%d announcements of one interrupted refresh by two engines, want 1", n)
	}
	put(time.Now()) // a new episode
	run()
	if n := announcements(); n != 2 {
		t.Fatalf("%d announcements after a second interrupted refresh, want 2", n)
	}
}
