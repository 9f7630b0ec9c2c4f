//go:build !darwin && !windows

package autostart

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The XDG Autostart spec: a desktop entry in $XDG_CONFIG_HOME/autostart is started by the session at
// login (https://specifications.freedesktop.org/autostart-spec/latest/).

func path(cfg Config) (string, error) {
	dir := cfg.Dir
	if dir == "" {
		base := os.Getenv("XDG_CONFIG_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("autostart: %w", err)
			}
			base = filepath.Join(home, ".config")
		}
		dir = filepath.Join(base, "autostart")
	}
	return filepath.Join(dir, Name+".desktop"), nil
}

func set(cfg Config, on bool) error {
	p, err := path(cfg)
	if err != nil {
		return err
	}
	if !on {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("autostart: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("autostart: %w", err)
	}
	if err := os.WriteFile(p, []byte(desktopEntry(cfg.Exec)), 0o600); err != nil {
		return fmt.Errorf("autostart: %w", err)
	}
	return nil
}

func isSet(cfg Config) (bool, error) {
	p, err := path(cfg)
	if err != nil {
		return false, err
	}
	_, err = os.Stat(p)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("autostart: %w", err)
}

// desktopEntry is the autostart file for exe. Exec is written as the Desktop Entry spec requires (the
// Exec key's "Quoting" section): the path is double-quoted with `"`, backtick, `$` and `\` escaped by a
// backslash; a literal `%` is doubled (field codes); and since the general string escape rule is
// applied before the quoting rule, every backslash of the result is doubled once more — a `\` in the
// path is four in the file.
func desktopEntry(exe string) string {
	q := strings.NewReplacer(`\`, `\\\\`, `"`, `\\"`, "`", "\\\\`", `$`, `\\$`, `%`, `%%`).Replace(exe)
	return "[Desktop Entry]\nType=Application\nName=authkeeper\n" +
		"Comment=Keeps the OAuth credentials of remote MCP servers fresh\n" +
		"Exec=\"" + q + "\"\nIcon=dev.authkeeper.app\nTerminal=false\nX-GNOME-Autostart-enabled=true\n"
}
