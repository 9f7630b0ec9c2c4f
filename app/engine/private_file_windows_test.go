package engine

import (
	"slices"
	"testing"

	"github.com/authkeeper/authkeeper/keychain"
	"golang.org/x/sys/windows"
)

// assertPrivateFile checks that only the user can open path on Windows, where a file's mode says
// nothing: the user owns it and every entry of its DACL that grants anything on the file grants the
// user, or SYSTEM, which Wine reports on every file (it derives the DACL from the Unix mode; Windows
// shows the user alone). This is stricter than keychain.CheckPrivate, which also accepts what a file
// made in the profile inherits (Administrators): a file authkeeper creates private has the user alone.
func assertPrivateFile(t *testing.T, path string) {
	t.Helper()
	user, err := keychain.UserSID()
	if err != nil {
		t.Fatal(err)
	}
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	acl, err := keychain.ReadACL(sd)
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
	if !slices.Contains(grantees, user) || slices.ContainsFunc(grantees, func(s string) bool { return s != user && s != keychain.SIDSystem }) {
		t.Errorf("%s: the DACL grants %q, want the user %s alone (%s)", path, grantees, user, sd)
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
