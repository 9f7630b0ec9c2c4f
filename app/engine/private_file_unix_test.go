//go:build !windows

package engine

import (
	"os"
	"testing"
)

// assertPrivateFile checks that only the user can open path: its mode is exactly 0600.
func assertPrivateFile(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("%s: mode %04o, want 0600", path, got)
	}
}

// privacyFixHint is what the refusal of an exposed file tells the user to run.
const privacyFixHint = "chmod 600"

// widen lets the group and others read path, or with write, write it (and not read it).
func widen(t *testing.T, path string, write bool) {
	t.Helper()
	mode := os.FileMode(0o644)
	if write {
		mode = 0o622
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
