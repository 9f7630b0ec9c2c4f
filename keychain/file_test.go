package keychain

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

func TestFileStoreKeepsTheStoreContract(t *testing.T) {
	s, err := NewFileStore(FileConfig{Dir: filepath.Join(testbed.TempDir(t), "creds")})
	if err != nil {
		t.Fatal(err)
	}
	checkStoreContract(t, s)
}

func TestFileStoreIsOwnerOnly(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(dir string) // before NewFileStore
	}{
		{"new directory", func(string) {}},
		{"existing world-readable directory is narrowed", func(dir string) {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(testbed.TempDir(t), "creds")
			c.prepare(dir)
			s, err := NewFileStore(FileConfig{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Put("srv", testRecord(10)); err != nil {
				t.Fatal(err)
			}
			assertMode(t, dir, 0o700)
			assertMode(t, s.Path(), 0o600)
			if w := s.Warning(); !strings.Contains(w, s.Path()) || !strings.Contains(w, "unencrypted") {
				t.Errorf("Warning() = %q, want the path and the word unencrypted", w)
			}
			entries, err := os.ReadDir(dir)
			if err != nil || len(entries) != 1 {
				t.Errorf("directory holds %v (%v), want only credentials.json (no temp files)", entries, err)
			}
		})
	}
}

func TestFileStoreRefusesAFileOthersCanRead(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no POSIX mode bits (Go reports every writable file as 0666), so the store " +
			"does not check them there: the file is private by its DACL, set when it is written " +
			"(TestFileStoreIsOwnerOnly checks it)")
	}
	s, err := NewFileStore(FileConfig{Dir: testbed.TempDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put("srv", testRecord(10)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(s.Path(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = s.Get("srv")
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("Get on a 0644 file: err = %v, want a refusal naming chmod 600", err)
	}
}

func TestFileStoreNeverOverwritesACorruptFile(t *testing.T) {
	s, err := NewFileStore(FileConfig{Dir: testbed.TempDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte("{not json")
	if err := os.WriteFile(s.Path(), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put("srv", testRecord(10)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Put over a corrupt file: err = %v, want ErrCorrupt", err)
	}
	if got, _ := os.ReadFile(s.Path()); string(got) != string(garbage) {
		t.Errorf("corrupt file was rewritten to %q", got)
	}
}
