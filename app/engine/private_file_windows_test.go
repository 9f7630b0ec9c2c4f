package engine

import (
	"testing"

	"golang.org/x/sys/windows"
)

// assertPrivateFile checks that only the user can open path on Windows, where a file's mode says
// nothing: the user owns it and its DACL grants the user and no one else, SYSTEM aside, which Wine
// reports on every file (it derives the DACL from the Unix mode). This is stricter than checkPrivate,
// which also accepts what a file made in the profile inherits (Administrators): a file authkeeper
// creates private has the user alone.
func assertPrivateFile(t *testing.T, path string) {
	t.Helper()
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	if owner, _, err := sd.Owner(); err != nil || owner.String() != userSID() {
		t.Errorf("%s: owner %v (%v), want the user %s", path, owner, err, userSID())
	}
	entries, hasDACL, err := daclEntries(sd)
	if err != nil || !hasDACL {
		t.Fatalf("%s: DACL %v, %v (%s)", path, hasDACL, err, sd)
	}
	grantsUser := false
	for _, e := range entries {
		if e.Flags&aceInheritOnly != 0 {
			continue // applies to a directory's children, not to the file
		}
		switch e.Type {
		case aceAllowed, aceAllowedCallback:
			switch e.SID {
			case userSID():
				grantsUser = true
			case sidSystem:
			default:
				t.Errorf("%s: the DACL grants %s (%s)", path, e.SID, sd)
			}
		case aceAllowedCompound, aceAllowedObject, aceAllowedCallbackObject:
			t.Errorf("%s: the DACL holds an allow entry of type %#x (%s)", path, e.Type, sd)
		}
	}
	if !grantsUser {
		t.Errorf("%s: the DACL grants the user nothing (%s)", path, sd)
	}
}
