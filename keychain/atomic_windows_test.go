package keychain

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"golang.org/x/sys/windows"
)

// TestOwnerOnlyPermMakesFilesPrivateByDACLOnWindows: WriteFileAtomic and CreateFileAtomic with an
// owner-only perm make a file the user owns and whose protected DACL grants no one else
// (assertOwnerOnly), also when it replaces a file Everyone could read.
func TestOwnerOnlyPermMakesFilesPrivateByDACLOnWindows(t *testing.T) {
	dir := testbed.TempDir(t)
	replaced := filepath.Join(dir, "replaced.json")
	if err := WriteFileAtomic(replaced, []byte("wide"), 0o644); err != nil {
		t.Fatal(err)
	}
	widen(t, replaced)
	for _, c := range []struct {
		name  string
		write func(path string) error
		path  string
	}{
		{"a new file", func(p string) error { return WriteFileAtomic(p, []byte("x"), 0o600) }, filepath.Join(dir, "new.json")},
		{"a replaced file", func(p string) error { return WriteFileAtomic(p, []byte("x"), 0o600) }, replaced},
		{"an exclusive create", func(p string) error { return CreateFileAtomic(p, []byte("x"), 0o600) }, filepath.Join(dir, "proxy.key")},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.write(c.path); err != nil {
				t.Fatal(err)
			}
			wantFile(t, c.path, "x", 0o600)
			assertOwnerOnly(t, c.path)
		})
	}
}

// TestWriteFileAtomicWaitsForAReaderThatHoldsTheFileOpen: on Windows a file another handle holds open
// cannot be replaced (Go opens files without FILE_SHARE_DELETE); WriteFileAtomic retries until the
// reader closes it instead of failing with "Access is denied". The test first shows that a plain
// rename fails while the reader holds the file, so the write's success can only come from a retry
// after the reader closed it, which it also checks.
func TestWriteFileAtomicWaitsForAReaderThatHoldsTheFileOpen(t *testing.T) {
	dir := testbed.TempDir(t)
	path := filepath.Join(dir, "config.json")
	if err := WriteFileAtomic(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	reader, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.json")
	if err := os.WriteFile(other, []byte("other"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, path); err == nil {
		reader.Close()
		t.Skip("this system renames over a file another handle holds open, so there is nothing to wait for")
	} else if !errors.Is(err, windows.ERROR_ACCESS_DENIED) && !errors.Is(err, windows.ERROR_SHARING_VIOLATION) {
		t.Fatalf("rename over a file held open: %v, want access denied or a sharing violation", err)
	} else {
		t.Logf("a plain rename while the reader holds the file: %v", err)
	}

	closed := make(chan error, 1)
	time.AfterFunc(200*time.Millisecond, func() { closed <- reader.Close() })
	if err := WriteFileAtomic(path, []byte("new"), 0o600); err != nil {
		t.Fatalf("replace while a reader holds the file: %v", err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatal("WriteFileAtomic returned before the reader closed the file: the rename cannot have succeeded")
	}
	wantFile(t, path, "new", 0o600)
}
