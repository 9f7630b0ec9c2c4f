//go:build linux

package keychain

import (
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// startKeychain starts gnome-keyring's Secret Service on a private session bus for the test; every
// item goes to its login keyring under the default service.
func startKeychain(t *testing.T) (service string) {
	testbed.StartKeyring(t)
	return "authkeeper"
}

// freezer stops and resumes the process serving the Secret Service on k's bus, at a moment a store's
// beforeCall hook chooses; it resumes it in cleanup.
type freezer struct {
	t   *testing.T
	pid int
}

func newFreezer(t *testing.T, k *testbed.Keyring) freezer {
	var pid uint32
	err := k.Bus.Connect(t).BusObject().Call("org.freedesktop.DBus.GetConnectionUnixProcessID", 0, "org.freedesktop.secrets").Store(&pid)
	if err != nil || pid == 0 {
		t.Fatalf("secret service pid: %d, %v", pid, err)
	}
	f := freezer{t, int(pid)}
	t.Cleanup(f.thaw)
	return f
}

func (f freezer) freeze() {
	if err := syscall.Kill(f.pid, syscall.SIGSTOP); err != nil {
		f.t.Errorf("freeze: %v", err)
	}
}

func (f freezer) thaw() { _ = syscall.Kill(f.pid, syscall.SIGCONT) }

// TestKeyringStoreGetDoesNotFallBackWhenTheKeyringStopsAnswering: the Secret Service stops answering
// while Get reads the current generation; Get must report the keychain unavailable, not hand back the
// previous generation, whose refresh token was rotated away (replaying it revokes the grant). The
// daemon is resumed when the previous generation is asked for, so a fallback would succeed.
func TestKeyringStoreGetDoesNotFallBackWhenTheKeyringStopsAnswering(t *testing.T) {
	k := testbed.StartKeyring(t)
	f := newFreezer(t, k)
	var armed atomic.Bool
	s, err := NewKeyringStore(KeyringConfig{ChunkSize: 64, Timeout: 500 * time.Millisecond, beforeCall: func(op, item string) {
		switch {
		case !armed.Load() || op != "get":
		case item == chunkKey("srv", 2, 0):
			f.freeze()
		case item == chunkKey("srv", 1, 0):
			f.thaw()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put("srv", testRecord(300)); err != nil {
		t.Fatal(err)
	}
	rec := testRecord(300)
	rec.RefreshToken = "SECRETrefresh-2"
	second, err := s.Put("srv", rec)
	if err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	got, err := s.Get("srv")
	armed.Store(false)
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrCorrupt) || got.RefreshToken != "" {
		t.Fatalf("Get while the keyring does not answer = %v (refresh token %q), want ErrUnavailable and no record", err, got.RefreshToken)
	}
	f.thaw()
	got, err = getAfterThaw(t, k, s, "srv")
	if err != nil || got.RefreshToken != second.RefreshToken {
		t.Errorf("Get once the keyring answers again: %v, %v; want the current generation", got, err)
	}
}

// TestKeyringStoreNeverReusesTheGenerationOfAFailedPut: a Put times out writing generation 2 and
// abandons its go-keyring call, whose write lands later. The next Put must write generation 3, so that
// the late write cannot land in the chunks it is writing or has written.
func TestKeyringStoreNeverReusesTheGenerationOfAFailedPut(t *testing.T) {
	k := testbed.StartKeyring(t)
	f := newFreezer(t, k)
	var armed atomic.Bool
	s, err := NewKeyringStore(KeyringConfig{ChunkSize: 64, Timeout: 500 * time.Millisecond, beforeCall: func(op, item string) {
		if op == "set" && item == chunkKey("srv", 2, 0) && armed.CompareAndSwap(true, false) {
			f.freeze()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put("srv", testRecord(300)); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	failed := testRecord(300)
	failed.RefreshToken = "SECRETrefresh-abandoned"
	if _, err := s.Put("srv", failed); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Put into a frozen keyring: %v, want ErrUnavailable", err)
	}
	f.thaw()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := item(t, "authkeeper", chunkKey("srv", 2, 0)); ok {
			break // the abandoned call wrote after its Put returned
		}
		if time.Now().After(deadline) {
			t.Fatal("the abandoned write never landed; the test proves nothing")
		}
		time.Sleep(20 * time.Millisecond) // polling another process's state
	}
	rec := testRecord(300)
	rec.RefreshToken = "SECRETrefresh-3"
	put, err := s.Put("srv", rec)
	if err != nil {
		t.Fatal(err)
	}
	if put.Revision != 3 {
		t.Errorf("Put after a failed Put wrote generation %d, want 3 (never the failed attempt's 2)", put.Revision)
	}
	if got, err := getAfterThaw(t, k, s, "srv"); err != nil || got.RefreshToken != rec.RefreshToken {
		t.Errorf("Get: %v, %v; want the last Put", got, err)
	}
}

// getAfterThaw is s.Get(name) after the daemon was resumed from a freeze. If the daemon died meanwhile
// (gnome-keyring can abort on resuming with calls queued: see testbed.Keyring.Revive), it is started
// again on the same keyring files and Get is asked once more: what these tests check is that the
// store's items survived, not the daemon.
func getAfterThaw(t *testing.T, k *testbed.Keyring, s *KeyringStore, name string) (Record, error) {
	t.Helper()
	got, err := s.Get(name)
	if err != nil && k.Revive(t) {
		got, err = s.Get(name)
	}
	return got, err
}

func TestKeyringStoreNamesTheCauseWhenUnavailable(t *testing.T) {
	cases := []struct {
		name    string
		breakIt func(t *testing.T)
		want    error
		says    []string
	}{
		{"keyring daemon stopped", func(t *testing.T) { testbed.StartKeyring(t).Stop(t) },
			ErrUnavailable, []string{"no Secret Service", "gnome-keyring", "--store file"}},
		{"no session bus", func(t *testing.T) {
			t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
			t.Setenv("XDG_RUNTIME_DIR", testbed.TempDir(t))
			t.Setenv("DISPLAY", "") // else godbus may autolaunch a bus through dbus-launch
		}, ErrUnavailable, []string{"no D-Bus session bus", "--store file"}},
		{"session bus gone", func(t *testing.T) {
			t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(testbed.TempDir(t), "no-bus"))
		}, ErrUnavailable, []string{"cannot reach the D-Bus session bus", "--store file"}},
		{"login keyring locked", func(t *testing.T) { testbed.StartKeyring(t).Lock(t) },
			ErrLocked, []string{"locked", "unlock it"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.breakIt(t)
			s := newKeyringStore(t, "authkeeper", 0)
			_, getErr := s.Get("srv")
			_, putErr := s.Put("srv", testRecord(100))
			for op, err := range map[string]error{"Get": getErr, "Put": putErr, "Check": s.Check()} {
				if !errors.Is(err, c.want) {
					t.Errorf("%s: err = %v, want %v", op, err, c.want)
					continue
				}
				for _, s := range c.says {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("%s: error %q does not say %q", op, err, s)
					}
				}
				if strings.Contains(err.Error(), "SECRET") {
					t.Errorf("%s: error leaks a secret: %v", op, err)
				}
			}
		})
	}
}

func TestKeyringStoreTimesOutOnASecretServiceThatNeverAnswers(t *testing.T) {
	k := testbed.StartKeyring(t)
	s, err := NewKeyringStore(KeyringConfig{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	k.Freeze(t)
	start := time.Now()
	_, err = s.Get("srv")
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "did not answer") {
		t.Errorf("Get from a frozen daemon: err = %v, want ErrUnavailable saying it did not answer", err)
	}
	// 200ms for the call plus at most 2s for diagnose's own probe of the frozen daemon.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Get took %v", d)
	}
}

// TestKeyringStoreReadsItsRecordsAfterTheDaemonRestarts: the Secret Service goes away (a crash, a
// logout) and comes back on the same keyring files; the store, holding no state of its own about the
// connection, reads what it wrote before. This is also what getAfterThaw relies on.
func TestKeyringStoreReadsItsRecordsAfterTheDaemonRestarts(t *testing.T) {
	k := testbed.StartKeyring(t)
	if k.Revive(t) {
		t.Fatal("Revive restarted a running daemon")
	}
	s := newKeyringStore(t, "authkeeper", 64)
	want, err := s.Put("srv", testRecord(300))
	if err != nil {
		t.Fatal(err)
	}
	k.Stop(t)
	if _, err := s.Get("srv"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get with the daemon stopped: %v, want ErrUnavailable", err)
	}
	if !k.Revive(t) {
		t.Fatal("Revive did not restart a stopped daemon")
	}
	got, err := s.Get("srv")
	if err != nil || got.RefreshToken != want.RefreshToken || got.Revision != want.Revision {
		t.Errorf("Get after the restart: revision %d, %v; want revision %d and the same refresh token", got.Revision, err, want.Revision)
	}
}
