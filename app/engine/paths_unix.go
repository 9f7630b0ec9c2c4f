//go:build !windows

package engine

import (
	"os"
	"path/filepath"
)

// newControlAddr is where an engine with paths p listens: the unix socket RuntimeDir/control.sock.
// The 0700 runtime directory keeps other users from placing anything there, so it needs no more.
func newControlAddr(p Paths) (string, error) { return defaultControlAddr(p), nil }

// defaultControlAddr is the control socket of p (see OwnerSocket).
func defaultControlAddr(p Paths) string { return filepath.Join(p.RuntimeDir, "control.sock") }

// isControlAddr reports whether s, read back from the owner lock, can be a control address: an
// absolute socket path.
func isControlAddr(s string) bool { return filepath.IsAbs(s) }

// removeControlAddr removes the control socket at addr at close: closing its listener unlinks it
// already, so this only clears one left behind by a listener that was not closed cleanly. Best
// effort: the next owner removes a stale socket before listening anyway.
func removeControlAddr(addr string) { _ = os.Remove(addr) }
