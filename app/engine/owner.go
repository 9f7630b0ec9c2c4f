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

// AcquireOwner takes the owner lock without waiting and records addr, the control address it will
// listen on (the socket's path, or on Windows the pipe's name), in it, so that other processes find
// it — whatever their runtime directory, and on Windows, where no one can derive the pipe's name (see
// newControlAddr), at all. Exactly one process holds the lock: that process runs the engine and is
// the only one that ever refreshes a grant; every other process talks to it over the control API. The
// OS releases the lock when its holder dies, so the next process that needs a token can take over.
func AcquireOwner(p Paths, addr string) (*keychain.FileLock, error) {
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
	// Through another descriptor, while the lock is held: the lock covers no byte of the content (on
	// Unix flock is advisory; on Windows, where locks are mandatory, it is a byte far past the end,
	// see keychain's lockOffset), and readers only read.
	if err := os.WriteFile(path, []byte(addr+"\n"), 0o600); err != nil {
		return nil, errors.Join(fmt.Errorf("owner lock: record the control address: %w", err), l.Unlock())
	}
	return l, nil
}

// OwnerSocket is the control address of the running owner (a socket path, or on Windows a pipe name):
// the one it recorded in the lock file. When none is recorded (no owner ever ran with these paths) it
// is on Unix the socket an owner of p listens on, and on Windows the pipe name's fixed prefix
// (PipeName), on which no owner listens: a client finds no owner there, as there is none, and error
// messages still have an address to name.
func OwnerSocket(p Paths) string {
	data, err := os.ReadFile(OwnerLockPath(p))
	if s := strings.TrimSpace(string(data)); err == nil && isControlAddr(s) {
		return s
	}
	return defaultControlAddr(p)
}

// OwnerLockHeld reports whether a process holds the owner lock now: the owner, or a process that is
// starting to own or handing over, whose control API may not answer yet or any more. With no answer
// on the control address, that tells "changing hands" from "not running". It takes the lock and
// lets it go at once (no platform says who holds a lock without trying it): a process that tries to
// own in that instant is refused as if an owner ran, and tries again (the app and `serve` take over,
// commands keep trying while no owner answers). It never creates the lock file.
func OwnerLockHeld(p Paths) (bool, error) {
	path := OwnerLockPath(p)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return false, nil // no owner ever ran with these paths
	}
	l, err := keychain.LockFile(path, 0)
	if errors.Is(err, keychain.ErrLockHeld) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("owner lock: %w", err)
	}
	return false, l.Unlock()
}
