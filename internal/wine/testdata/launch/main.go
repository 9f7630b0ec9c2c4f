// Command launch starts a program as Explorer or cmd.exe starts a GUI-subsystem program: with no
// standard handles (STARTF_USESTDHANDLES, all three 0). It waits for it and exits with its code.
// Built for windows by the tests of internal/wine.
package main

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: launch PROGRAM [ARGS...]")
		os.Exit(2)
	}
	line, err := windows.UTF16PtrFromString(windows.ComposeCommandLine(os.Args[1:]))
	if err != nil {
		fmt.Fprintln(os.Stderr, "launch:", err)
		os.Exit(2)
	}
	si := &windows.StartupInfo{Flags: windows.STARTF_USESTDHANDLES}
	si.Cb = uint32(unsafe.Sizeof(*si))
	var pi windows.ProcessInformation
	if err := windows.CreateProcess(nil, line, nil, nil, false, 0, nil, nil, si, &pi); err != nil {
		fmt.Fprintln(os.Stderr, "launch:", err)
		os.Exit(2)
	}
	defer windows.CloseHandle(pi.Process)
	defer windows.CloseHandle(pi.Thread)
	if _, err := windows.WaitForSingleObject(pi.Process, windows.INFINITE); err != nil {
		fmt.Fprintln(os.Stderr, "launch:", err)
		os.Exit(2)
	}
	var code uint32
	if err := windows.GetExitCodeProcess(pi.Process, &code); err != nil {
		fmt.Fprintln(os.Stderr, "launch:", err)
		os.Exit(2)
	}
	os.Exit(int(code))
}
