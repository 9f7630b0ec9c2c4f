package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/authkeeper/authkeeper/keychain"
)

// OwnerLockPath is the machine-wide owner lock. It lives in the config directory, not the runtime
// directory: XDG_RUNTIME_DIR is missing in cron jobs, `sudo -u` and some SSH sessions, and a lock that
// moved with it would let two processes own — and refresh — the same rotating grant.
func OwnerLockPath(p Paths) string { return filepath.Join(p.ConfigDir, "owner.lock") }

// AcquireOwner takes the owner lock without waiting and records the control address (the socket's
// path, or on Windows the pipe's name) in it, so processes whose runtime directory differs still find
// the owner. Exactly one process holds the lock:
// that process runs the engine and is the only one that ever refreshes a grant; every other process
// talks to it over the control API. The OS releases the lock when its holder dies, so the next process
// that needs a token can take over.
func AcquireOwner(p Paths) (*keychain.FileLock, error) {
	if err := os.MkdirAll(p.ConfigDir, 0o700); err != nil {
		return nil, fmt.Errorf("owner lock: %w", err)
	}
	path := OwnerLockPath(p)
	l, err := keychain.LockFile(path, 0)
	if errors.Is(err, keychain.ErrLockHeld) {
		return nil, fmt.Errorf("%w (its control API answers on %s)", ErrNotOwner, OwnerSocket(p))
	}
	if err != nil {
		return nil, fmt.Errorf("owner lock: %w", err)
	}
	// flock is advisory: writing through another descriptor is fine, and readers only read.
	if err := os.WriteFile(path, []byte(p.ControlSocket()+"\n"), 0o600); err != nil {
		return nil, errors.Join(fmt.Errorf("owner lock: record the control address: %w", err), l.Unlock())
	}
	return l, nil
}

// OwnerSocket is the control address of the running owner (a socket path, or on Windows a pipe name):
// the one it recorded in the lock file, or this process's own default when none is recorded.
func OwnerSocket(p Paths) string {
	data, err := os.ReadFile(OwnerLockPath(p))
	if s := strings.TrimSpace(string(data)); err == nil && isControlAddr(s) {
		return s
	}
	return p.ControlSocket()
}
