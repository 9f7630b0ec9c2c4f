//go:build !((dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd)

package keychain

import (
	"fmt"
	"runtime"
)

// diagnose turns a failed go-keyring call into ErrUnavailable naming the fix. On macOS and Windows
// go-keyring reports only the `security` tool's exit status or the Win32 error, which does not tell a
// locked keychain from a missing one, so ErrLocked is never returned here.
func diagnose(cause error) error {
	fix := "the keychain refused access: choose --store file"
	switch runtime.GOOS {
	case "darwin":
		// go-keyring reaches the keychain by running /usr/bin/security, so any prompt macOS shows names
		// that tool, never authkeeper.
		fix = "the macOS login keychain refused access: unlock it (Keychain Access, or `security unlock-keychain`), allow `security` if macOS asks (authkeeper reaches the keychain through that tool), or choose --store file"
	case "windows":
		fix = "Windows Credential Manager refused access: check that the Credential Manager service runs, or choose --store file"
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, fix, cause)
}

// preflight has nothing to check: these keychains need no bus.
func preflight() error { return nil }

// locked cannot be told here without touching an item (which may prompt): false, "not known".
func locked() bool { return false }
