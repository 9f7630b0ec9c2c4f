package testbed

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TempDir is t.TempDir with a removal that also works under Wine: it returns a new directory, unique
// to this call, that is removed when the test and its subtests finish, and a failed removal fails the
// test.
//
// On Windows it removes the tree itself, depth first, one os.Remove per entry, because Wine 8 does not
// implement NtSetInformationFile(FileDispositionInformationEx), which os.RemoveAll (and so the cleanup
// of t.TempDir) relies on: there every removal fails with "unlinkat: Invalid function". Elsewhere it is
// exactly t.TempDir.
func TempDir(t testing.TB) string {
	t.Helper()
	if runtime.GOOS != "windows" {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("", tempPattern(t.Name()))
	if err != nil {
		t.Fatalf("TempDir: %v", err)
	}
	t.Cleanup(func() {
		// A child that has just exited may still hold a file open for a moment (real Windows refuses to
		// delete an open file), so retry briefly before failing, as t.TempDir does.
		var err error
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if err = removeTree(dir); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Errorf("TempDir cleanup: %v", err)
		}
	})
	return dir
}

// tempPattern makes a MkdirTemp pattern from a test name: path separators and characters Windows
// forbids in file names become underscores, and the result is kept short.
func tempPattern(name string) string {
	const maxLen = 64
	mapped := strings.Map(func(r rune) rune {
		if strings.ContainsRune(`<>:"/\|?*`, r) || r < ' ' {
			return '_'
		}
		return r
	}, name)
	if len(mapped) > maxLen {
		mapped = mapped[:maxLen]
	}
	return mapped + "-*"
}

// removeTree deletes dir and everything under it with os.Remove alone: entries first, then their
// directory. A tree that is already gone is not an error.
func removeTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() { // IsDir is false for a symlink, which is removed, never followed.
			if err := removeTree(p); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
