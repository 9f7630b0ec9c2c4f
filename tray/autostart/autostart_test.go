//go:build !darwin && !windows

package autostart

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
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
	for _, want := range []string{"[Desktop Entry]\n", "Type=Application\n", `Exec="/opt/auth keeper/bin/authkeeper\\$1"` + "\n"} {
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

// TestAutostartEntryStartsTheProgramThroughGLib hands the written entry to GLib's own desktop-entry
// loader and launcher (`gio launch`, what GNOME's session uses for autostart entries) for programs at
// paths with every character the Exec key's quoting covers: each one runs. A `%` (doubled, as field
// codes require) is checked as text: GLib refuses to load any Exec whose program path holds one.
func TestAutostartEntryStartsTheProgramThroughGLib(t *testing.T) {
	testbed.Need(t, "gio")
	for _, name := range []string{"plain", "a space", `dollar$HOME`, "back`tick`", `quote"d`, `back\slash`, `all $ ` + "`" + ` " \ of them`} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			mark := filepath.Join(t.TempDir(), "ran")
			prog := filepath.Join(dir, "authkeeper")
			if err := os.WriteFile(prog, []byte("#!/bin/sh\nprintf '%s' \"$0\" > '"+mark+"'\n"), 0o700); err != nil {
				t.Fatal(err)
			}
			entry := filepath.Join(t.TempDir(), "authkeeper.desktop")
			if err := os.WriteFile(entry, []byte(desktopEntry(prog)), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("gio", "launch", entry).CombinedOutput(); err != nil {
				t.Fatalf("gio launch: %v\n%s\nentry:\n%s", err, out, desktopEntry(prog))
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				got, err := os.ReadFile(mark)
				if err == nil && len(got) > 0 {
					if string(got) != prog {
						t.Errorf("GLib ran %q, want %q", got, prog)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("the program did not run within 10s; entry:\n%s", desktopEntry(prog))
				}
				time.Sleep(20 * time.Millisecond) // gio launch does not wait for the program
			}
		})
	}
	if got := desktopEntry("/opt/100%/authkeeper"); !strings.Contains(got, `Exec="/opt/100%%/authkeeper"`+"\n") {
		t.Errorf("a %% in the path is not doubled:\n%s", got)
	}
}
