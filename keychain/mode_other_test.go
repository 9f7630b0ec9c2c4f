//go:build !windows

package keychain

import (
	"os"
	"testing"
)

// assertMode checks that path has exactly the permission bits want.
func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s: mode %04o, want %04o", path, got, want)
	}
}

// privacyFixHint is what CheckPrivate's refusal tells the user to run.
const privacyFixHint = "chmod 600"

// widen lets the group and others read path.
func widen(t *testing.T, path string) {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
}
