//go:build linux

package keychain

import (
	"errors"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/google/go-cmp/cmp"
	"github.com/zalando/go-keyring"
)

// The largest record these tests store: a 10 KB access token, about 14.5 KB once encoded.
const bigToken = 10 * 1024

func newKeyringStore(t *testing.T, chunk int) *KeyringStore {
	t.Helper()
	s, err := NewKeyringStore(KeyringConfig{ChunkSize: chunk})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// item reads one raw keychain item, as another program would see it.
func item(t *testing.T, key string) (string, bool) {
	t.Helper()
	v, err := keyring.Get("authkeeper", key)
	if errors.Is(err, keyring.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatalf("read item %s: %v", key, err)
	}
	return v, true
}

func TestKeyringStoreKeepsTheStoreContract(t *testing.T) {
	testbed.StartKeyring(t)
	checkStoreContract(t, newKeyringStore(t, 0))
}

func TestKeyringStoreChunksLargeRecordsUnderAManifest(t *testing.T) {
	testbed.StartKeyring(t)
	cases := []struct {
		name      string
		chunk     int
		tokenLen  int
		minChunks int
	}{
		{"small record, default chunk size", 0, 200, 1},
		{"10 KB token, default chunk size", 0, bigToken, 7},
		{"Entra-sized token, chunk size forced small", 64, 3000, 60},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newKeyringStore(t, c.chunk)
			name := "srv-" + strconv.Itoa(c.tokenLen)
			for i := range 3 {
				rec := testRecord(c.tokenLen)
				rec.RefreshToken = "SECRETrefresh-" + strconv.Itoa(i)
				got, err := s.Put(name, rec)
				if err != nil {
					t.Fatalf("Put %d: %v", i+1, err)
				}
				read, err := s.Get(name)
				if err != nil {
					t.Fatalf("Get after Put %d: %v", i+1, err)
				}
				if diff := cmp.Diff(got, read); diff != "" {
					t.Fatalf("Get after Put %d (-put +get):\n%s", i+1, diff)
				}
			}
			raw, _ := item(t, name)
			m, err := parseManifest(raw)
			if err != nil {
				t.Fatal(err)
			}
			if m.Cur.Gen != 3 || m.Prev == nil || m.Prev.Gen != 2 || m.Cur.Chunks < c.minChunks {
				t.Errorf("manifest %+v, want generation 3 of at least %d chunks over generation 2", m, c.minChunks)
			}
			size := max(c.chunk, 1)
			if c.chunk == 0 {
				size = DefaultChunkSize
			}
			encoded := 0
			for i := range m.Cur.Chunks {
				v, ok := item(t, chunkKey(name, 3, i))
				if !ok || len(v) > size {
					t.Errorf("chunk 3.%d: present=%v len=%d, want present and ≤ %d", i, ok, len(v), size)
				}
				encoded += len(v)
			}
			if _, ok := item(t, chunkKey(name, 1, 0)); ok {
				t.Error("generation 1 still stored after generation 3 was written")
			}
			if strings.Contains(raw, "SECRET") {
				t.Errorf("manifest holds a secret: %s", raw)
			}
			if err := s.Delete(name); err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{name, chunkKey(name, 3, 0), chunkKey(name, 2, 0)} {
				if _, ok := item(t, key); ok {
					t.Errorf("item %s survived Delete", key)
				}
			}
			t.Logf("stored a %d-byte access token: record %d bytes encoded, %d chunks of ≤ %d bytes",
				c.tokenLen, encoded, m.Cur.Chunks, size)
		})
	}
}

func TestKeyringStoreCrashBeforeManifestSwitchKeepsThePreviousRecord(t *testing.T) {
	testbed.StartKeyring(t)
	s := newKeyringStore(t, 64)
	before, err := s.Put("srv", testRecord(500))
	if err != nil {
		t.Fatal(err)
	}
	cmd := child(t, "crash", "KC_NAME=srv", "KC_CHUNK=64", "KC_LEN=3000")
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("crash child: err = %v, want killed", err)
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("crash child ended with %v, want SIGKILL from its hook", exit)
	}
	if _, ok := item(t, chunkKey("srv", 2, 60)); !ok {
		t.Fatal("the child died before writing generation 2's chunks; the test proves nothing")
	}
	got, err := s.Get("srv")
	if err != nil {
		t.Fatalf("Get after the crash: %v", err)
	}
	if diff := cmp.Diff(before, got); diff != "" {
		t.Errorf("Get after the crash (-before +got):\n%s", diff)
	}
	// The next write reuses generation 2 and removes the crashed writer's surplus chunks.
	after, err := s.Put("srv", testRecord(500))
	if err != nil || after.Revision != 2 {
		t.Fatalf("Put after the crash: revision %d, %v; want 2", after.Revision, err)
	}
	if _, ok := item(t, chunkKey("srv", 2, 60)); ok {
		t.Error("orphan chunk of the crashed write survived the next Put")
	}
	if got, err := s.Get("srv"); err != nil || got.RefreshToken != after.RefreshToken {
		t.Errorf("Get after recovery: %v, %v", got, err)
	}
}

func TestKeyringStoreReaderFallsBackFromADamagedGeneration(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(t *testing.T)
	}{
		{"ChunkMissing", func(t *testing.T) {
			if err := keyring.Delete("authkeeper", chunkKey("srv", 2, 1)); err != nil {
				t.Fatal(err)
			}
		}},
		{"ChunkAltered", func(t *testing.T) {
			v, _ := item(t, chunkKey("srv", 2, 1))
			if err := keyring.Set("authkeeper", chunkKey("srv", 2, 1), strings.Repeat("A", len(v))); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			testbed.StartKeyring(t)
			var log testbed.SyncBuffer
			s, err := NewKeyringStore(KeyringConfig{ChunkSize: 64, Logger: slog.New(slog.NewTextHandler(&log, nil))})
			if err != nil {
				t.Fatal(err)
			}
			first, err := s.Put("srv", testRecord(300))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Put("srv", testRecord(300)); err != nil {
				t.Fatal(err)
			}
			c.damage(t)
			got, err := s.Get("srv")
			if err != nil {
				t.Fatalf("Get with generation 2 damaged: %v", err)
			}
			if diff := cmp.Diff(first, got); diff != "" {
				t.Errorf("want the last complete generation (-gen1 +got):\n%s", diff)
			}
			if w := log.String(); !strings.Contains(w, "using the previous one") || strings.Contains(w, "SECRET") {
				t.Errorf("fallback warning = %q, want one without secrets", w)
			}
			if err := keyring.Delete("authkeeper", chunkKey("srv", 1, 0)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get("srv"); !errors.Is(err, ErrCorrupt) || strings.Contains(err.Error(), "SECRET") {
				t.Errorf("Get with both generations damaged: err = %v, want ErrCorrupt without secrets", err)
			}
		})
	}
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
	if got, err := s.Get("srv"); err != nil || got.RefreshToken != second.RefreshToken {
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
		if _, ok := item(t, chunkKey("srv", 2, 0)); ok {
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
	if got, err := s.Get("srv"); err != nil || got.RefreshToken != rec.RefreshToken {
		t.Errorf("Get: %v, %v; want the last Put", got, err)
	}
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
			t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
			t.Setenv("DISPLAY", "") // else godbus may autolaunch a bus through dbus-launch
		}, ErrUnavailable, []string{"no D-Bus session bus", "--store file"}},
		{"session bus gone", func(t *testing.T) {
			t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "no-bus"))
		}, ErrUnavailable, []string{"cannot reach the D-Bus session bus", "--store file"}},
		{"login keyring locked", func(t *testing.T) { testbed.StartKeyring(t).Lock(t) },
			ErrLocked, []string{"locked", "unlock it"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.breakIt(t)
			s := newKeyringStore(t, 0)
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

func TestKeyringStoreConcurrentWritersAreSerialisedByTheLock(t *testing.T) {
	testbed.StartKeyring(t)
	lock := filepath.Join(t.TempDir(), "lock")
	const writers, each = 2, 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		revs []int
	)
	for range writers {
		cmd := child(t, "writer", "KC_NAME=shared", "KC_CHUNK=64", "KC_LOCK="+lock, "KC_COUNT="+strconv.Itoa(each))
		wg.Go(func() {
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("writer: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, f := range strings.Fields(string(out)) {
				n, _ := strconv.Atoi(f)
				revs = append(revs, n)
			}
		})
	}
	wg.Wait()
	slices.Sort(revs)
	want := make([]int, writers*each)
	for i := range want {
		want[i] = i + 1
	}
	if diff := cmp.Diff(want, revs); diff != "" {
		t.Errorf("revisions handed out (-want +got), a duplicate is a lost update:\n%s", diff)
	}
	got, err := newKeyringStore(t, 64).Get("shared")
	if err != nil || got.Revision != writers*each {
		t.Errorf("final record: revision %d, %v; want %d", got.Revision, err, writers*each)
	}
}
