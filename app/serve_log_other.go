//go:build !unix

package app

import "io"

// journalStderr reports whether w is read by the systemd journal: never, off Unix.
func journalStderr(func(string) string, io.Writer) bool { return false }
