package engine

import (
	"testing"

	"github.com/authkeeper/authkeeper/keychain"
	"golang.org/x/sys/windows"
)

// assertPrivateFile checks that only the user can open path on Windows, where a file's mode says
// nothing (keychain.CheckOwnerOnly).
func assertPrivateFile(t *testing.T, path string) {
	t.Helper()
	if err := keychain.CheckOwnerOnly(path); err != nil {
		t.Error(err)
	}
}

// privacyFixHint is what the refusal of an exposed file tells the user to run.
const privacyFixHint = "icacls"

// widen adds an entry that lets Everyone read path, or with write, write it (and not read it),
// keeping the user's.
func widen(t *testing.T, path string, write bool) {
	t.Helper()
	user, err := keychain.UserSID()
	if err != nil {
		t.Fatal(err)
	}
	everyone := "(A;;FR;;;WD)"
	if write {
		everyone = "(A;;FW;;;WD)"
	}
	sd, err := windows.SecurityDescriptorFromString("D:P(A;;FA;;;" + user + ")" + everyone)
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
