//go:build unix

package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// detach starts cmd in a session of its own, so it outlives the xdg-open that started it.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }

// lockFile blocks until it holds the exclusive lock on f, which ends when f is closed or the process
// exits.
func lockFile(f *os.File) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return nil
}
