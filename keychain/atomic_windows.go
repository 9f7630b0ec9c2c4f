package keychain

import (
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// openNew creates path, which must not exist, for writing. A perm without group or other bits makes
// it private from the start (createPrivate).
func openNew(path string, perm os.FileMode) (*os.File, error) {
	if perm&0o077 != 0 {
		return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	}
	// CREATE_NEW fails with ERROR_FILE_EXISTS, which satisfies errors.Is(err, fs.ErrExist).
	return createPrivate(path, windows.GENERIC_READ|windows.GENERIC_WRITE, windows.CREATE_NEW)
}

// openAppendPrivate opens path for appending, creating it private (createPrivate). The access is what
// os.OpenFile asks for with O_WRONLY|O_APPEND: every write right but FILE_WRITE_DATA, so that Windows
// puts each write at the end of the file.
func openAppendPrivate(path string) (*os.File, error) {
	return createPrivate(path, windows.FILE_APPEND_DATA|windows.FILE_WRITE_ATTRIBUTES|windows.FILE_WRITE_EA|
		windows.STANDARD_RIGHTS_WRITE|windows.SYNCHRONIZE, windows.OPEN_ALWAYS)
}

// createPrivate opens path with CreateFile's access and disposition, sharing it as os.OpenFile does
// (read and write, not delete). A file it creates is private from the start (OwnerOnlySDDL): creating
// it first and restricting it after would let another user open it in between and keep reading
// through that handle what is written later, as Windows checks access only when a file is opened. A
// file that already exists keeps its security descriptor.
func createPrivate(path string, access, disposition uint32) (*os.File, error) {
	user, err := UserSID()
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	sd, err := windows.SecurityDescriptorFromString(OwnerOnlySDDL(user))
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("private security descriptor: %w", err)}
	}
	sa := &windows.SecurityAttributes{Length: uint32(unsafe.Sizeof(windows.SecurityAttributes{})), SecurityDescriptor: sd}
	name, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	h, err := windows.CreateFile(name, access, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE, sa, disposition,
		windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(h), path), nil
}

// replaceRetryFor is how long replace keeps retrying a rename that another open handle blocks; Go's
// own cmd/go/internal/robustio waits as long (golang.org/issue/31247, /32188).
const replaceRetryFor = 2 * time.Second

// replace renames tmp over path, retrying for a while when the rename is refused for a reason that
// passes: Windows refuses to replace a file that any process holds open without FILE_SHARE_DELETE —
// and Go opens every file without it, so another authkeeper process merely reading path (the config,
// the file store) makes the rename fail with "Access is denied" — and virus scanners and indexers
// open new files briefly too. A refusal that lasts (a real lack of access) is returned after
// replaceRetryFor.
func replace(tmp, path string) error {
	deadline := time.Now().Add(replaceRetryFor)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		err := os.Rename(tmp, path)
		if err == nil || !(errors.Is(err, windows.ERROR_ACCESS_DENIED) || errors.Is(err, windows.ERROR_SHARING_VIOLATION)) ||
			time.Now().After(deadline) {
			return err
		}
		if fi, serr := os.Lstat(path); serr == nil && fi.IsDir() {
			return err // a directory is in the way: waiting will not move it
		}
		time.Sleep(delay)
	}
}

// syncDir does nothing: Windows has no directory fsync (a directory handle cannot be flushed, and
// trying fails with "Access is denied"); NTFS journals the rename itself.
func syncDir(string) error { return nil }
