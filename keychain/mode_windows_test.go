package keychain

import (
	"os"
	"testing"

	"golang.org/x/sys/windows"
)

// assertMode checks what want means on Windows, where Go reports every writable file as 0666 and every
// directory as 0777 whatever was asked for: a file whose want has no group or other bits must be owned
// by the user, with a DACL that grants no one else but SYSTEM, which Wine reports on every file (as in
// TestOwnerOnlyPermMakesFilesPrivateByDACLOnWindows). Directories are not checked: the stores leave
// them the ACL they inherit (the user's profile directory's), and the files in them are private by
// their own DACL.
func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.IsDir() || want&0o077 != 0 {
		return
	}
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	user := tu.User.Sid.String()
	owner, sids := grantees(t, path)
	if owner != user {
		t.Errorf("%s: owner %s, want the user %s", path, owner, user)
	}
	for _, s := range sids {
		if s != user && s != "S-1-5-18" {
			t.Errorf("%s: the DACL grants %s (mode %04o asked for)", path, s, want)
		}
	}
}
