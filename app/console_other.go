//go:build !windows

package app

// attachParentConsole is needed only by the Windows GUI-subsystem build (see console_windows.go).
func attachParentConsole() {}
