package keychain

import (
	"os"
	"testing"

	"golang.org/x/sys/windows"
)

// privacyFixHint is what CheckPrivate's refusal tells the user to run.
const privacyFixHint = "icacls"

// assertMode checks what want means on Windows, where Go reports every writable file as 0666 and every
// directory as 0777 whatever was asked for: a file whose want has no group or other bits must be
// private by its owner and DACL (assertOwnerOnly). Directories are not checked: the stores leave them
// the ACL they inherit (the user's profile directory's), and the files in them are private by their
// own DACL.
func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.IsDir() || want&0o077 != 0 {
		return
	}
	assertOwnerOnly(t, path)
}

// assertOwnerOnly checks that path is the user's alone (CheckOwnerOnly).
func assertOwnerOnly(t *testing.T, path string) {
	t.Helper()
	if err := CheckOwnerOnly(path); err != nil {
		t.Error(err)
	}
}

// widen lets Everyone read path, keeping the user's grant, the way a careless icacls or a copy from a
// shared folder would.
func widen(t *testing.T, path string) {
	t.Helper()
	user, err := UserSID()
	if err != nil {
		t.Fatal(err)
	}
	sd, err := windows.SecurityDescriptorFromString("D:P(A;;FA;;;" + user + ")(A;;FR;;;WD)")
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatal(err)
	}
	if err := windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		t.Fatal(err)
	}
}
