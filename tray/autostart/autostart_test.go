//go:build !darwin && !windows

package autostart

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStartAtLoginWritesAndRemovesTheXDGAutostartEntry(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	file := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "autostart", "authkeeper.desktop")
	cfg := Config{Exec: `/opt/auth keeper/bin/authkeeper$1`}

	if on, err := IsSet(cfg); err != nil || on {
		t.Fatalf("IsSet before = %v, %v; want false", on, err)
	}
	if err := Set(cfg, true); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("entry not written where the session looks: %v", err)
	}
	for _, want := range []string{"[Desktop Entry]\n", "Type=Application\n", `Exec="/opt/auth keeper/bin/authkeeper\$1"` + "\n"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("entry lacks %q:\n%s", want, data)
		}
	}
	if on, err := IsSet(cfg); err != nil || !on {
		t.Errorf("IsSet after Set(true) = %v, %v", on, err)
	}
	if err := Set(cfg, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("entry still there after Set(false): %v", err)
	}
	if err := Set(cfg, false); err != nil {
		t.Errorf("removing an absent entry: %v", err)
	}
}

func TestStartAtLoginNeedsAProgramAndHonoursDir(t *testing.T) {
	if err := Set(Config{}, true); !errors.Is(err, ErrNoExec) {
		t.Errorf("Set without Exec = %v, want ErrNoExec", err)
	}
	dir := t.TempDir()
	if err := Set(Config{Exec: "/bin/authkeeper", Dir: dir}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "authkeeper.desktop")); err != nil {
		t.Errorf("entry not in Dir: %v", err)
	}
}
