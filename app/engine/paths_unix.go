//go:build !windows

package engine

import (
	"os"
	"path/filepath"
)

// controlAddr is the control API's unix socket inside RuntimeDir.
func controlAddr(p Paths) string { return filepath.Join(p.RuntimeDir, "control.sock") }

// isControlAddr reports whether s, read back from the owner lock, can be a control address: an
// absolute socket path.
func isControlAddr(s string) bool { return filepath.IsAbs(s) }

// removeControlAddr removes the control socket at close: closing its listener unlinks it already, so
// this only clears one left behind by a listener that was not closed cleanly. Best effort: the next
// owner removes a stale socket before listening anyway.
func removeControlAddr(p Paths) { _ = os.Remove(controlAddr(p)) }
