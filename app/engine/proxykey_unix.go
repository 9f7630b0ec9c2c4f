//go:build !windows

package engine

import (
	"fmt"
	"os"
)

// checkPrivate refuses a key file whose mode lets the group or others in.
func checkPrivate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("proxy key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("proxy key %s is readable by other users (mode %v); run `chmod 600 %s`", path, fi.Mode().Perm(), path)
	}
	return nil
}
