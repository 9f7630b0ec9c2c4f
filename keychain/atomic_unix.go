//go:build !windows

package keychain

import (
	"fmt"
	"os"
)

// openNew creates path, which must not exist, for writing with mode perm (less the umask: writeAtomic
// sets it exactly afterwards).
func openNew(path string, perm os.FileMode) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
}

// openAppendPrivate opens path for appending, creating it with mode 0600 (less the umask, which can
// only narrow it).
func openAppendPrivate(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
}

// replace renames tmp over path.
func replace(tmp, path string) error { return os.Rename(tmp, path) }

// syncDir fsyncs a directory so a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%w: sync %s: %w", ErrNotDurable, dir, err)
	}
	return nil
}
