//go:build windows

package keychain

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// lockOffset is the byte LockFileEx locks: 1 GiB in, past any content, as SQLite's lock bytes are.
// Windows locks are mandatory — no other handle, not even the holder's own second one, may read or
// write a locked byte — and the owner lock's content (the control address, see engine.AcquireOwner)
// must be written through another handle and read by other processes. Locking past the end of a file
// is allowed.
const lockOffset = 1 << 30

// tryLock takes an exclusive LockFileEx lock on the byte at lockOffset without blocking; busy reports
// that another holder has it. Windows releases the lock when its holder's handle closes.
func tryLock(f *os.File) (busy bool, err error) {
	ol := &windows.Overlapped{Offset: lockOffset}
	err = windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return true, nil
	}
	return false, err
}

func unlock(f *os.File) error {
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, &windows.Overlapped{Offset: lockOffset})
}
