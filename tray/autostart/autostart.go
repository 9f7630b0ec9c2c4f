// Package autostart registers a program to start when the user logs in: an XDG autostart entry on
// Linux and the BSDs, a LaunchAgent on macOS, the Run key on Windows. It has no GUI dependency, so
// every platform's file can be vetted from any machine.
package autostart

import "errors"

// Name is the entry's name: the file stem on Linux, the Run value on Windows.
const Name = "authkeeper"

// Label is the LaunchAgent label on macOS (the app id of FyneApp.toml).
const Label = "dev.authkeeper.app"

// Config says what to start and where the entry lives.
type Config struct {
	// Exec is the absolute path of the program to start at login. Required by Set(…, true).
	Exec string
	// Dir is the directory that holds the entry; default: $XDG_CONFIG_HOME/autostart (else
	// ~/.config/autostart) on Linux, ~/Library/LaunchAgents on macOS. Unused on Windows, whose entry
	// is a registry value.
	Dir string
}

// ErrNoExec means Set was asked to enable start at login without a program to start.
var ErrNoExec = errors.New("autostart: no program to start (Config.Exec is empty)")

// Set writes (on) or removes (off) the entry. Removing an absent entry is not an error.
func Set(cfg Config, on bool) error {
	if on && cfg.Exec == "" {
		return ErrNoExec
	}
	return set(cfg, on)
}

// IsSet reports whether the entry exists.
func IsSet(cfg Config) (bool, error) { return isSet(cfg) }
