package keychain

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// dirNames lists dir's entries.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

func wantFile(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || string(got) != content {
		t.Fatalf("%s = %q, %v; want %q", path, got, err, content)
	}
	if runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != perm {
		t.Errorf("%s mode %v, want %v", path, fi.Mode().Perm(), perm)
	}
}

// TestWriteFileAtomicReplacesWithExactModeAndLeavesNoTemp: the new content replaces the old with the
// mode asked for (not the old file's), and no temp file is left behind.
func TestWriteFileAtomicReplacesWithExactModeAndLeavesNoTemp(t *testing.T) {
	dir := testbed.TempDir(t)
	path := filepath.Join(dir, "f.json")
	if err := WriteFileAtomic(path, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantFile(t, path, "one", 0o600)
	if err := WriteFileAtomic(path, []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	wantFile(t, path, "two", 0o640)
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("directory holds %q, want only f.json", names)
	}
}

// TestWriteFileAtomicFailsCleanly: a directory that does not exist is an error, and a failed rename
// (onto a non-empty directory) leaves the target and no temp file.
func TestWriteFileAtomicFailsCleanly(t *testing.T) {
	dir := testbed.TempDir(t)
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("write into a missing directory: %v", err)
	}
	target := filepath.Join(dir, "d")
	if err := os.MkdirAll(filepath.Join(target, "inner"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(target, []byte("x"), 0o600); err == nil {
		t.Fatal("replacing a non-empty directory succeeded")
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "d" {
		t.Errorf("after the failed write the directory holds %q", names)
	}
}

// TestCreateFileAtomicNeverClobbers: the first create wins, a second gets fs.ErrExist and leaves the
// file as it was; of concurrent creators exactly one wins; no temp file is left either way.
func TestCreateFileAtomicNeverClobbers(t *testing.T) {
	dir := testbed.TempDir(t)
	path := filepath.Join(dir, "proxy.key")
	if err := CreateFileAtomic(path, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CreateFileAtomic(path, []byte("second"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second create: %v, want fs.ErrExist", err)
	}
	wantFile(t, path, "first", 0o600)

	race := filepath.Join(dir, "race")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = CreateFileAtomic(race, []byte{byte('a' + i)}, 0o600) })
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
			wantFile(t, race, string(rune('a'+i)), 0o600)
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("creator %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d creators won, want 1", won)
	}
	if names := dirNames(t, dir); len(names) != 2 {
		t.Errorf("directory holds %q, want proxy.key and race", names)
	}
}

// TestOpenAppendPrivateCreatesAPrivateFileAndAppendsToIt: a file OpenAppendPrivate creates is private
// (mode 0600; on Windows by its DACL, see assertMode), every write lands at the end, and reopening
// keeps what is there.
func TestOpenAppendPrivateCreatesAPrivateFileAndAppendsToIt(t *testing.T) {
	path := filepath.Join(testbed.TempDir(t), "audit.jsonl")
	for _, line := range []string{"one\n", "two\n"} {
		f, err := OpenAppendPrivate(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	wantFile(t, path, "one\ntwo\n", 0o600)
	assertMode(t, path, 0o600)
}
