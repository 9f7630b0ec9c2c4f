package keychain

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ErrLockHeld means another process holds the lock.
var ErrLockHeld = errors.New("still held by another authkeeper process")

// FileLock is a held cross-process lock; see LockFile. Not safe for concurrent use.
type FileLock struct{ f *os.File }

// lockPoll is how often LockFile retries a busy lock. The holder is another process, which cannot
// signal us, so polling is the only way short of an uncancellable blocking flock.
const lockPoll = 20 * time.Millisecond

// LockFile takes the exclusive lock on path (created 0600, its directory 0700, if absent), waiting up to
// timeout for another holder; a timeout of 0 (or less) tries exactly once. While another holder keeps
// it, the error wraps ErrLockHeld. CLI processes hold it around every write to the config and the
// keychain when the app is not running; the lock dies with its process, so a crash never leaves it
// stuck.
func LockFile(path string, timeout time.Duration) (*FileLock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		busy, err := tryLock(f)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("lock %s: %w", path, err), f.Close())
		}
		if !busy {
			return &FileLock{f: f}, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, errors.Join(fmt.Errorf("lock %s: %w after %v", path, ErrLockHeld, max(timeout, 0)), f.Close())
		}
		time.Sleep(min(lockPoll, left)) // the last try falls on the deadline, not up to lockPoll past it
	}
}

// Unlock releases the lock.
func (l *FileLock) Unlock() error {
	return errors.Join(unlock(l.f), l.f.Close())
}
