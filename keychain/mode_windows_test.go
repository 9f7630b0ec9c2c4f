package keychain

import (
	"os"
	"slices"
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

// assertOwnerOnly checks that path is the user's alone: the user owns it and every entry of its DACL
// that grants anything on the file grants the user, or SYSTEM, which Wine reports on every file (it
// derives the DACL from the Unix mode, and drops the protected flag; Windows shows the user alone).
// This is stricter than CheckPrivate, which also accepts what a file made in the profile inherits
// (Administrators): a file authkeeper makes private has the user alone.
func assertOwnerOnly(t *testing.T, path string) {
	t.Helper()
	user, err := UserSID()
	if err != nil {
		t.Fatal(err)
	}
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	acl, err := ReadACL(sd)
	if err != nil {
		t.Fatalf("%s: %v (%s)", path, err, sd)
	}
	if acl.Owner != user {
		t.Errorf("%s: owner %s, want the user %s (%s)", path, acl.Owner, user, sd)
	}
	if !acl.HasDACL {
		t.Errorf("%s: no DACL (%s)", path, sd)
	}
	var grantees []string
	for _, e := range acl.Entries {
		if e.Applies() {
			grantees = append(grantees, e.SID)
		}
	}
	if !slices.Contains(grantees, user) || slices.ContainsFunc(grantees, func(s string) bool { return s != user && s != SIDSystem }) {
		t.Errorf("%s: the DACL grants %q, want the user %s alone (%s)", path, grantees, user, sd)
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
