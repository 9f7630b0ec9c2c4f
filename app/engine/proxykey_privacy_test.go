package engine

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// TestLoadProxyKeyMakesAPrivateKeyAndRefusesOneOthersCanRead: the first load makes a key file only
// the user can read (on Windows: by its DACL, not its mode) and later loads return the same key; once
// another user can read the file, loading refuses with the file's name and the OS's command that
// makes it private again (widenKey and the hint live in the per-OS test files).
func TestLoadProxyKeyMakesAPrivateKeyAndRefusesOneOthersCanRead(t *testing.T) {
	dir := testbed.TempDir(t)
	path := filepath.Join(dir, "proxy.key")
	key, err := LoadProxyKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != 64 {
		t.Errorf("key %d characters long, want 64 hex digits", len(key))
	}
	if err := checkPrivate(path); err != nil {
		t.Errorf("a new key is not private: %v", err)
	}
	if again, err := LoadProxyKey(dir); err != nil || again != key {
		t.Errorf("second load = %q, %v; want the first key", again, err)
	}

	widenKey(t, path)
	_, err = LoadProxyKey(dir)
	if err == nil {
		t.Fatal("a key others can read was loaded")
	}
	for _, want := range []string{path, privacyFixHint} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
