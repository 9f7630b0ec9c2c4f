package keychain

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/google/go-cmp/cmp"
)

func TestConfigFileMissingMeansDefaults(t *testing.T) {
	c, err := NewConfigFile(testbed.TempDir(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Load()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(DefaultSettings(), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestConfigFileSavesAtomicallyAndLoadsBack(t *testing.T) {
	dir := filepath.Join(testbed.TempDir(t), "authkeeper")
	c, err := NewConfigFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultSettings()
	want.Servers = []Server{{Name: "linear", URL: "https://mcp.linear.app/mcp", RefreshFraction: 0.5},
		{Name: "local", URL: "http://127.0.0.1:8080/mcp", ClientID: "pre-registered"}}
	want.Prefs.StartAtLogin, want.Prefs.ProxyPort = true, 7777
	for range 2 { // the second Save replaces an existing file
		if err := c.Save(want); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.Load()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-saved +loaded):\n%s", diff)
	}
	assertMode(t, c.Path(), 0o600)
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("config dir holds %v, want only config.json (no temp files)", entries)
	}
}

func TestConfigFileRejectsInvalidSettingsOnSave(t *testing.T) {
	c, _ := NewConfigFile(testbed.TempDir(t), nil)
	s := DefaultSettings()
	s.Servers = []Server{{Name: "a", URL: "https://a"}, {Name: "a", URL: "https://b"}}
	if err := c.Save(s); err == nil {
		t.Fatal("saved two servers of the same name")
	}
	if _, err := os.Stat(c.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected Save wrote %s", c.Path())
	}
}

func TestConfigFileCorruptIsKeptAsideNeverOverwritten(t *testing.T) {
	cases := map[string]string{
		"not json":        `{"servers": [`,
		"invalid setting": `{"servers":[{"name":"x","url":"ftp://x"}],"prefs":{"store":"keychain"}}`,
		"unknown store":   `{"prefs":{"store":"cloud"}}`,
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			c, _ := NewConfigFile(testbed.TempDir(t), func() time.Time { return at })
			if err := os.WriteFile(c.Path(), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := c.Load()
			if !errors.Is(err, ErrCorruptConfig) {
				t.Fatalf("Load: err = %v, want ErrCorruptConfig", err)
			}
			aside := c.Path() + ".corrupt-20300102T030405.000000000Z"
			if !strings.Contains(err.Error(), aside) {
				t.Errorf("error %q does not name %s", err, aside)
			}
			if kept, _ := os.ReadFile(aside); string(kept) != content {
				t.Errorf("kept aside %q, want the original %q", kept, content)
			}
			if _, err := os.Stat(c.Path()); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("config.json still there after moving it aside: %v", err)
			}
			if diff := cmp.Diff(DefaultSettings(), got); diff != "" {
				t.Errorf("Load returned (-defaults +got):\n%s", diff)
			}
		})
	}
}

func TestLockFileExcludesASecondHolderUntilUnlocked(t *testing.T) {
	path := filepath.Join(testbed.TempDir(t), "dir", "lock")
	first, err := LockFile(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockFile(path, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "still held") {
		t.Fatalf("second LockFile while held: err = %v, want still held", err)
	}
	if err := first.Unlock(); err != nil {
		t.Fatal(err)
	}
	second, err := LockFile(path, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("LockFile after Unlock: %v", err)
	}
	if err := second.Unlock(); err != nil {
		t.Fatal(err)
	}
}
