package app

import (
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/windows"
)

// attachParentConsole gives the tray exe's command line a place to print. The tray build is linked as a
// GUI-subsystem program (-H=windowsgui) so that no console window opens with the tray; Windows then
// starts it with no standard output or error, and `authkeeper.exe status` typed in cmd.exe or
// PowerShell would print nothing. Each of the two that is not already a valid handle (a pipe or a file
// the caller redirected to stays as it is) is pointed at the console of the parent process, if it has
// one; started from Explorer or the Start menu there is none, and nothing changes.
//
// Attaching shares the console without holding the shell: cmd.exe does not wait for a GUI program,
// so its prompt may print before the output. Scripts that need the exit code or ordered output use
// `start /wait`, a redirect, or the headless (console) exe.
func attachParentConsole() {
	needOut, needErr := !validStdHandle(windows.STD_OUTPUT_HANDLE), !validStdHandle(windows.STD_ERROR_HANDLE)
	if !needOut && !needErr {
		return
	}
	// AttachConsole is not wrapped by x/sys/windows; ATTACH_PARENT_PROCESS is (DWORD)-1. Its result is
	// not needed: ERROR_ACCESS_DENIED means the process already has a console (Wine attaches a GUI
	// program started from a console to it, without standard handles), and when there is none at all
	// (started from Explorer) opening CONOUT$ below fails.
	if attach := windows.NewLazySystemDLL("kernel32.dll").NewProc("AttachConsole"); attach.Find() == nil {
		_, _, _ = attach.Call(uintptr(^uint32(0)))
	}
	for _, s := range []struct {
		need bool
		std  uint32
		file **os.File
		name string
	}{
		{needOut, windows.STD_OUTPUT_HANDLE, &os.Stdout, "/dev/stdout"},
		{needErr, windows.STD_ERROR_HANDLE, &os.Stderr, "/dev/stderr"},
	} {
		if !s.need {
			continue
		}
		h, err := windows.CreateFile(windows.StringToUTF16Ptr("CONOUT$"), windows.GENERIC_READ|windows.GENERIC_WRITE,
			windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, nil, windows.OPEN_EXISTING, 0, 0)
		if err != nil {
			return // no console to print to
		}
		// The process's own standard handle too, so that what it starts (busy run) inherits the console.
		_ = windows.SetStdHandle(s.std, h)
		*s.file = os.NewFile(uintptr(h), s.name)
	}
}

// validStdHandle reports whether the standard handle std refers to something that can be written:
// a console, a pipe or a file. A GUI-subsystem program started without redirection has none (0).
func validStdHandle(std uint32) bool {
	h, err := windows.GetStdHandle(std)
	if err != nil || h == 0 || h == windows.InvalidHandle {
		return false
	}
	t, _ := windows.GetFileType(h) // FILE_TYPE_UNKNOWN for a closed or foreign handle
	return t != windows.FILE_TYPE_UNKNOWN
}

// noConsole starts cmd without a console window of its own: the tray exe (a GUI program, perhaps
// with no console) asking the console exe next to it for its version must not flash a window.
func noConsole(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{HideWindow: true, CreationFlags: windows.CREATE_NO_WINDOW}
}
