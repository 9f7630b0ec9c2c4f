package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
)

// Paths are the directories authkeeper uses. Non-secret settings and the owner lock live in ConfigDir
// (the lock must be machine-wide, see owner.go), the audit log in StateDir, and the control socket in
// RuntimeDir (on Windows the control API is a named pipe instead, whose name the owner records in the
// owner lock: see PipeName and OwnerSocket). No token is ever written to any of them unless the user
// explicitly chose the file credential store.
type Paths struct {
	ConfigDir  string // default: os.UserConfigDir()/authkeeper
	StateDir   string // default: $XDG_STATE_HOME/authkeeper, else ~/.local/state/authkeeper (ConfigDir/state off Linux)
	RuntimeDir string // default: $XDG_RUNTIME_DIR/authkeeper, else ConfigDir/run
}

// ConfigFile is the settings file inside ConfigDir.
func (p Paths) ConfigFile() string { return filepath.Join(p.ConfigDir, "config.json") }

// PipeName is the fixed prefix of the Windows control pipe's name for the user with SID userSID whose
// runtime directory is runtimeDir: \\.\pipe\authkeeper- and 16 hex digits of a SHA-256 over both.
// Each owner appends a random suffix of its own (see newControlAddr) and records the whole name in the
// owner lock, where clients read it (OwnerSocket): the named-pipe namespace is machine-wide and
// whoever creates a name first holds it, so a name another local user could compute would let them
// create it first and keep authkeeper from listening. The prefix differs per user and per runtime
// directory only to tell pipes apart in a listing. The directory is compared the way Windows compares
// paths — either separator, cleaned, case-folded — so two spellings of one directory give one prefix;
// the same on every OS, so that it is tested everywhere. The whole name is unpredictable, not secret
// (anyone may list the pipes): what keeps others out of the pipe is its ACL (see app/control).
func PipeName(runtimeDir, userSID string) string {
	dir := strings.ToLower(path.Clean(strings.ReplaceAll(runtimeDir, `\`, "/")))
	sum := sha256.Sum256([]byte(userSID + "\x00" + dir))
	return `\\.\pipe\authkeeper-` + hex.EncodeToString(sum[:8])
}

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
// which other local users must not reach. (On Windows the mode means little; the directories are
// private by inheritance from the user's profile, and the control pipe carries its own ACL.)
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
