package engine

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
)

// TestLoadProxyKeyMakesAPrivateKeyAndRefusesOneOthersCanReadOrWrite: the first load makes a key file
// only the user can open (assertPrivateFile: on Windows by its owner and DACL, not its mode) and later
// loads return the same key; once another user can read the file — or write it, and so choose the
// key — loading refuses with keychain.ErrNotPrivate, the file's name and the OS's command that makes
// it private again (widen and the hint live in the per-OS test files).
func TestLoadProxyKeyMakesAPrivateKeyAndRefusesOneOthersCanReadOrWrite(t *testing.T) {
	for _, c := range []struct {
		name  string
		write bool
	}{
		{"others may read it", false},
		{"others may write it", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := testbed.TempDir(t)
			path := filepath.Join(dir, "proxy.key")
			key, err := LoadProxyKey(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(key) != 64 {
				t.Errorf("key %d characters long, want 64 hex digits", len(key))
			}
			assertPrivateFile(t, path)
			if again, err := LoadProxyKey(dir); err != nil || again != key {
				t.Errorf("second load = %q, %v; want the first key", again, err)
			}

			widen(t, path, c.write)
			_, err = LoadProxyKey(dir)
			if !errors.Is(err, keychain.ErrNotPrivate) {
				t.Fatalf("load of a key %s: %v, want keychain.ErrNotPrivate", c.name, err)
			}
			for _, want := range []string{path, privacyFixHint} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}
