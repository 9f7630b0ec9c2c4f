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
