//go:build !windows

package engine

import (
	"os"
	"testing"
)

// privacyFixHint is what the refusal of an exposed key tells the user to run.
const privacyFixHint = "chmod 600"

// widenKey lets the group and others read the key file.
func widenKey(t *testing.T, path string) {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
}
