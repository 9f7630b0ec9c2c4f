//go:build unix

package e2e

import "syscall"

// harnessUnsupported is empty: an installation runs as NewInstall describes.
const harnessUnsupported = ""

// mkfifo creates the named pipe the fake xdg-open writes each URL to, readable by this user only.
func mkfifo(path string) error { return syscall.Mkfifo(path, 0o600) }
