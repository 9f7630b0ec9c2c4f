//go:build linux || windows

package keychain

import (
	"errors"
	"log/slog"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/google/go-cmp/cmp"
	"github.com/zalando/go-keyring"
)

// These tests run KeyringStore against the real keychain of the platform: gnome-keyring's Secret
// Service on Linux, Credential Manager through go-keyring's wincred back end on Windows (under Wine in
// `make test`). startKeychain (keyring_linux_test.go, keyring_windows_test.go) provides it and returns
// the service name the test must file its items under.

// The largest record these tests store: a 10 KB access token, about 14.5 KB once encoded.
const bigToken = 10 * 1024

func newKeyringStore(t *testing.T, service string, chunk int) *KeyringStore {
	t.Helper()
	s, err := NewKeyringStore(KeyringConfig{Service: service, ChunkSize: chunk})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// item reads one raw keychain item, as another program would see it.
func item(t *testing.T, service, key string) (string, bool) {
	t.Helper()
	v, err := keyring.Get(service, key)
	if errors.Is(err, keyring.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatalf("read item %s: %v", key, err)
	}
	return v, true
}

// killedByItsHook reports whether a crash child's err says it was killed by its own hook (crashChild):
// os.Process.Kill is SIGKILL on Unix and TerminateProcess with exit status 1 on Windows, a status the
// child never exits with itself.
func killedByItsHook(err error) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	if runtime.GOOS == "windows" {
		return exit.ExitCode() == 1
	}
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signal() == syscall.SIGKILL
}

func TestKeyringStoreKeepsTheStoreContract(t *testing.T) {
	service := startKeychain(t)
	s := newKeyringStore(t, service, 0)
	if err := s.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	checkStoreContract(t, s)
}

func TestKeyringStoreChunksLargeRecordsUnderAManifest(t *testing.T) {
	service := startKeychain(t)
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
			s := newKeyringStore(t, service, c.chunk)
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
			raw, _ := item(t, service, name)
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
				v, ok := item(t, service, chunkKey(name, 3, i))
				if !ok || len(v) > size {
					t.Errorf("chunk 3.%d: present=%v len=%d, want present and ≤ %d", i, ok, len(v), size)
				}
				encoded += len(v)
			}
			if _, ok := item(t, service, chunkKey(name, 1, 0)); ok {
				t.Error("generation 1 still stored after generation 3 was written")
			}
			if strings.Contains(raw, "SECRET") {
				t.Errorf("manifest holds a secret: %s", raw)
			}
			if err := s.Delete(name); err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{name, chunkKey(name, 3, 0), chunkKey(name, 2, 0)} {
				if _, ok := item(t, service, key); ok {
					t.Errorf("item %s survived Delete", key)
				}
			}
			t.Logf("stored a %d-byte access token: record %d bytes encoded, %d chunks of ≤ %d bytes",
				c.tokenLen, encoded, m.Cur.Chunks, size)
		})
	}
}

func TestKeyringStoreCrashBeforeManifestSwitchKeepsThePreviousRecord(t *testing.T) {
	service := startKeychain(t)
	s := newKeyringStore(t, service, 64)
	before, err := s.Put("srv", testRecord(500))
	if err != nil {
		t.Fatal(err)
	}
	cmd := child(t, "crash", "KC_SERVICE="+service, "KC_NAME=srv", "KC_CHUNK=64", "KC_LEN=3000")
	if err := cmd.Run(); !killedByItsHook(err) {
		t.Fatalf("crash child ended with %v, want killed by its hook", err)
	}
	if _, ok := item(t, service, chunkKey("srv", 2, 60)); !ok {
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
	if _, ok := item(t, service, chunkKey("srv", 2, 60)); ok {
		t.Error("orphan chunk of the crashed write survived the next Put")
	}
	if got, err := s.Get("srv"); err != nil || got.RefreshToken != after.RefreshToken {
		t.Errorf("Get after recovery: %v, %v", got, err)
	}
}

func TestKeyringStoreReaderFallsBackFromADamagedGeneration(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, service string)
	}{
		{"ChunkMissing", func(t *testing.T, service string) {
			if err := keyring.Delete(service, chunkKey("srv", 2, 1)); err != nil {
				t.Fatal(err)
			}
		}},
		{"ChunkAltered", func(t *testing.T, service string) {
			v, _ := item(t, service, chunkKey("srv", 2, 1))
			if err := keyring.Set(service, chunkKey("srv", 2, 1), strings.Repeat("A", len(v))); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			service := startKeychain(t)
			var log testbed.SyncBuffer
			s, err := NewKeyringStore(KeyringConfig{Service: service, ChunkSize: 64,
				Logger: slog.New(slog.NewTextHandler(&log, nil))})
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
			c.damage(t, service)
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
			if err := keyring.Delete(service, chunkKey("srv", 1, 0)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get("srv"); !errors.Is(err, ErrCorrupt) || strings.Contains(err.Error(), "SECRET") {
				t.Errorf("Get with both generations damaged: err = %v, want ErrCorrupt without secrets", err)
			}
		})
	}
}

func TestKeyringStoreConcurrentWritersAreSerialisedByTheLock(t *testing.T) {
	service := startKeychain(t)
	lock := filepath.Join(testbed.TempDir(t), "lock")
	const writers, each = 2, 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		revs []int
	)
	for range writers {
		cmd := child(t, "writer", "KC_SERVICE="+service, "KC_NAME=shared", "KC_CHUNK=64", "KC_LOCK="+lock,
			"KC_COUNT="+strconv.Itoa(each))
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
	got, err := newKeyringStore(t, service, 64).Get("shared")
	if err != nil || got.Revision != writers*each {
		t.Errorf("final record: revision %d, %v; want %d", got.Revision, err, writers*each)
	}
}
