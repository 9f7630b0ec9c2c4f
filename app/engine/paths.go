package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Paths are the directories authkeeper uses. Non-secret settings and the owner lock live in ConfigDir
// (the lock must be machine-wide, see owner.go), the audit log in StateDir, and the control socket in
// RuntimeDir. No token is ever written to any of
// them unless the user explicitly chose the file credential store.
type Paths struct {
	ConfigDir  string // default: os.UserConfigDir()/authkeeper
	StateDir   string // default: $XDG_STATE_HOME/authkeeper, else ~/.local/state/authkeeper (ConfigDir/state off Linux)
	RuntimeDir string // default: $XDG_RUNTIME_DIR/authkeeper, else ConfigDir/run
}

// ConfigFile is the settings file inside ConfigDir.
func (p Paths) ConfigFile() string { return filepath.Join(p.ConfigDir, "config.json") }

// ControlSocket is the control API's unix socket inside RuntimeDir.
func (p Paths) ControlSocket() string { return filepath.Join(p.RuntimeDir, "control.sock") }

// DefaultPaths derives the directories from the environment the way each OS expects.
func DefaultPaths(getenv func(string) string) (Paths, error) {
	cfg, err := os.UserConfigDir()
	if err != nil {
		return Paths{}, fmt.Errorf("find the user config directory: %w", err)
	}
	p := Paths{ConfigDir: filepath.Join(cfg, "authkeeper")}
	switch {
	case getenv("XDG_STATE_HOME") != "":
		p.StateDir = filepath.Join(getenv("XDG_STATE_HOME"), "authkeeper")
	case runtime.GOOS == "linux" && getenv("HOME") != "":
		p.StateDir = filepath.Join(getenv("HOME"), ".local", "state", "authkeeper")
	default:
		p.StateDir = filepath.Join(p.ConfigDir, "state")
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		p.RuntimeDir = filepath.Join(d, "authkeeper")
	} else {
		p.RuntimeDir = filepath.Join(p.ConfigDir, "run")
	}
	return p, nil
}

// Ensure creates every directory with mode 0700: they hold the control socket and the audit log,
// which other local users must not reach.
func (p Paths) Ensure() error {
	for _, d := range []string{p.ConfigDir, p.StateDir, p.RuntimeDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("restrict %s: %w", d, err)
		}
	}
	return nil
}
