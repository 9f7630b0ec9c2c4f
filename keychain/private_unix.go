//go:build !windows

package keychain

import (
	"fmt"
	"os"
)

// CheckPrivate returns an error wrapping ErrNotPrivate, naming f's file and the chmod command that
// fixes it, when f's mode lets the group or others read or write it. The mode is read from the open
// file, so it is the file being read that is judged, not one swapped in at the same path since.
func CheckPrivate(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s %w (mode %04o: the group or others may read or write it); run `chmod 600 %s`",
			f.Name(), ErrNotPrivate, perm, f.Name())
	}
	return nil
}
