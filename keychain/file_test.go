package keychain

import (
	"errors"
	"os"
	"path/filepath"
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

// TestFileStoreRefusesAFileOthersCanRead: once others may read the credentials file (on Unix its
// mode, on Windows an entry for Everyone in its DACL), the store refuses it with ErrNotPrivate, the
// file's name and the command that makes it private again.
func TestFileStoreRefusesAFileOthersCanRead(t *testing.T) {
	s, err := NewFileStore(FileConfig{Dir: testbed.TempDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put("srv", testRecord(10)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("srv"); err != nil {
		t.Fatalf("Get on the file the store wrote: %v", err)
	}
	widen(t, s.Path())
	_, err = s.Get("srv")
	if !errors.Is(err, ErrNotPrivate) {
		t.Fatalf("Get on a file others can read: err = %v, want ErrNotPrivate", err)
	}
	for _, want := range []string{s.Path(), privacyFixHint} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if _, err := s.Put("srv", testRecord(11)); !errors.Is(err, ErrNotPrivate) {
		t.Errorf("Put over a file others can read: err = %v, want ErrNotPrivate", err)
	}
}

func TestFileStoreNeverOverwritesACorruptFile(t *testing.T) {
	s, err := NewFileStore(FileConfig{Dir: testbed.TempDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte("{not json")
	// Private, as the store writes it (os.WriteFile's 0600 is no DACL on Windows): it is the content
	// that is wrong here, not who may read it.
	if err := WriteFileAtomic(s.Path(), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put("srv", testRecord(10)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Put over a corrupt file: err = %v, want ErrCorrupt", err)
	}
	if got, _ := os.ReadFile(s.Path()); string(got) != string(garbage) {
		t.Errorf("corrupt file was rewritten to %q", got)
	}
}
