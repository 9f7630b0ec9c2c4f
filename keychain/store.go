// Package keychain stores authkeeper's secrets and settings.
//
// Secrets — one Record per server, tokens plus the binding they were issued under — go to the
// operating system's keychain through github.com/zalando/go-keyring (KeyringStore), or, only when the
// user explicitly chooses it, to a 0600 file (FileStore). Records are split into chunks under a small
// manifest so that 2–4 KB Entra ID tokens fit Windows Credential Manager (2560 bytes per entry) and
// macOS's `security -i` (4096 bytes per command), and updates are crash-safe. Non-secret settings go to
// a JSON file under os.UserConfigDir() (ConfigFile). Nothing secret is written anywhere else.
//
// One writer: the running app owns all writes; CLI processes go through it, and when it is not running
// they serialise on a file lock (LockFile) that guards the config and the keychain records.
//
// The package imports neither oauth nor app; its consumers declare the narrower interfaces they need.
package keychain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Store keeps one Record per server name. Implementations are safe for concurrent use.
type Store interface {
	// Get returns the stored record, or an error wrapping ErrNotFound.
	Get(name string) (Record, error)
	// Put stores rec under name, setting its Revision to one more than the stored one (KeyringStore
	// skips the numbers of its own failed attempts) and Written to now, and returns what was stored. It
	// returns only once the record is durable.
	Put(name string, rec Record) (Record, error)
	// Delete removes the record, or returns an error wrapping ErrNotFound.
	Delete(name string) error
}

var (
	// ErrNotFound means no record is stored under the name.
	ErrNotFound = errors.New("no credentials stored")
	// ErrUnavailable means the keychain cannot be reached (no Secret Service, no session bus, no
	// answer). The error wrapping it names the cause and the fix.
	ErrUnavailable = errors.New("keychain unavailable")
	// ErrLocked means the keychain is there but locked and the user must unlock it. It does not match
	// ErrUnavailable: retrying after an unlock will work.
	ErrLocked = errors.New("keychain locked")
	// ErrCorrupt means a stored record cannot be decoded and no earlier complete copy exists.
	ErrCorrupt = errors.New("stored credentials corrupt")
	// ErrConflict means a store shared by several instances (the fleet's) refused a write because the
	// record changed since the revision the writer read, or because the writer no longer holds the
	// grant's election. Nothing was written; read the record again.
	ErrConflict = errors.New("the stored credentials changed meanwhile")
)

// maxNameLen bounds a server name; it becomes part of keychain item names.
const maxNameLen = 128

// ValidName reports whether name can name a server: 1–128 printable characters, no '#' or '/' (the
// keyring store uses '#' to name chunks; '/' keeps names usable as file names).
func ValidName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("server name %q: must be 1 to %d bytes", name, maxNameLen)
	}
	if strings.ContainsAny(name, "#/\\") {
		return fmt.Errorf("server name %q: must not contain '#', '/' or '\\'", name)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("server name %q: must be printable", name)
		}
	}
	return nil
}

// clone returns rec with its own copy of every slice (Scopes, Binding.RequestedScopes), so a caller
// cannot mutate a stored record.
func clone(rec Record) Record {
	rec.Scopes = slices.Clone(rec.Scopes)
	rec.Binding.RequestedScopes = slices.Clone(rec.Binding.RequestedScopes)
	return rec
}
