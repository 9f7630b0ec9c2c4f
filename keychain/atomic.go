package keychain

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// ErrNotDurable: the file was written and is in place, but its directory could not be synced, so a
// power cut soon after might undo the rename. Callers that only need a best effort may ignore it.
var ErrNotDurable = errors.New("written, but the directory could not be synced")

// WriteFileAtomic replaces path with data so that a reader, or the file after a crash, holds either
// the old content or the new, never a mix: write a temp file in the same directory with mode perm
// (exactly, whatever the umask), fsync it, rename it over path, fsync the directory (without that the
// rename itself may not survive a power cut). The directory must exist. On error path is unchanged
// and the temp file is removed.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeAtomic(path, data, perm, false)
}

// CreateFileAtomic is WriteFileAtomic for a file that must not exist yet: the synced temp file is
// hard-linked to path instead of renamed over it, so of two concurrent creators exactly one wins, and
// the other gets an error that satisfies errors.Is(err, fs.ErrExist) with path untouched. Like
// WriteFileAtomic it never leaves a half-written file at path.
func CreateFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeAtomic(path, data, perm, true)
}

// writeAtomic is the one implementation of both writers; exclusive places the temp file with a hard
// link (fails if path exists) instead of a rename (replaces path).
func writeAtomic(path string, data []byte, perm os.FileMode, exclusive bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			// Gone already if it was renamed into place before the directory sync failed.
			if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = errors.Join(err, rerr)
			}
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return errors.Join(err, f.Close())
	}
	if _, err := f.Write(data); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Close(); err != nil {
		return err
	}
	if exclusive {
		if err := os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
			return err
		} else if err != nil {
			// No hard links here (FAT, some network file systems): an exclusive create still lets
			// exactly one creator win, though a crash mid-write could leave a short file.
			return createExclusive(path, data, perm)
		}
		// The temp name is now a second name of path: drop it before the directory sync, so that both
		// changes are made durable together. Failing that leaves a stray extra
		// name of the new file (same content and mode), never a wrong path.
		_ = os.Remove(tmp)
	} else if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir fsyncs a directory so a rename in it is durable. Windows has no directory fsync (a directory
// handle cannot be flushed; NTFS journals the rename itself), so there it does nothing.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
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

// createExclusive writes a new file at path (failing with fs.ErrExist if there is one), synced.
func createExclusive(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return errors.Join(err, f.Close())
	}
	if _, err := f.Write(data); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(err, f.Close())
	}
	return f.Close()
}
