package keychain

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// ErrNotDurable: the file was written and is in place, but its directory could not be synced, so a
// power cut soon after might undo the rename. Callers that only need a best effort may ignore it.
var ErrNotDurable = errors.New("written, but the directory could not be synced")

// WriteFileAtomic replaces path with data so that a reader, or the file after a crash, holds either
// the old content or the new, never a mix: write a temp file in the same directory with mode perm
// (exactly, whatever the umask), fsync it, rename it over path, fsync the directory (without that the
// rename itself may not survive a power cut). The directory must exist. On error path is unchanged
// and the temp file is removed.
//
// On Windows, where file modes are not permissions, a perm without group or other bits (0600, 0400)
// is kept the Windows way: the file is created with a protected DACL that grants the current user
// alone (see OwnerOnlySDDL), so it never exists, even empty, with the directory's inherited ACL. Other
// perms leave the inherited ACL as it is. Windows has no directory fsync, so there the rename is as
// durable as NTFS's journal makes it.
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

// OpenAppendPrivate opens path for appending, and creates it if it does not exist as a file only the
// current user may read: on Unix with mode 0600, on Windows (where modes are not permissions) owned by
// the user with the protected DACL of OwnerOnlySDDL, set as the file is created, so that no other user
// can open it in between and read what is appended later. An existing file is opened as it is, its
// permissions untouched. Every write lands at the end of the file.
func OpenAppendPrivate(path string) (*os.File, error) { return openAppendPrivate(path) }

// writeAtomic is the one implementation of both writers; exclusive places the temp file with a hard
// link (fails if path exists) instead of a rename (replaces path).
func writeAtomic(path string, data []byte, perm os.FileMode, exclusive bool) (err error) {
	dir := filepath.Dir(path)
	f, err := createTemp(dir, "."+filepath.Base(path)+".tmp-", perm)
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
	} else if err := replace(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// createTemp creates a new file named prefix plus a random number in dir, as os.CreateTemp does, but
// through openNew, so that it is private from its creation when perm says so.
func createTemp(dir, prefix string, perm os.FileMode) (*os.File, error) {
	for try := 0; ; try++ {
		f, err := openNew(filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10)), perm)
		if errors.Is(err, fs.ErrExist) && try < 10000 {
			continue
		}
		return f, err
	}
}

// createExclusive writes a new file at path (failing with fs.ErrExist if there is one), synced.
func createExclusive(path string, data []byte, perm os.FileMode) (err error) {
	f, err := openNew(path, perm)
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
