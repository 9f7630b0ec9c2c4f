//go:build !windows

package app

import "os/exec"

// attachParentConsole is needed only by the Windows GUI-subsystem build (see console_windows.go).
func attachParentConsole() {}

// noConsole matters only on Windows (see console_windows.go).
func noConsole(*exec.Cmd) {}
