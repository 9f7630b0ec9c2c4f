package keychain

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/windows"
)

// fileAllAccess is FILE_ALL_ACCESS (winnt.h): STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0x1FF, what
// SDDL's FA stands for.
const fileAllAccess = 0x1f01ff

// TestOwnerOnlySDDLParsesToTheUserAloneInAProtectedDACL: Windows reads OwnerOnlySDDL as a descriptor
// whose owner is the user and whose protected DACL holds one entry, allowing the user full control
// (FILE_ALL_ACCESS) — checked on the descriptor Windows parses, not on the string.
func TestOwnerOnlySDDLParsesToTheUserAloneInAProtectedDACL(t *testing.T) {
	user, err := UserSID()
	if err != nil {
		t.Fatal(err)
	}
	for _, sid := range []string{user, "S-1-5-21-1-2-3-1001"} {
		sd, err := windows.SecurityDescriptorFromString(OwnerOnlySDDL(sid))
		if err != nil {
			t.Fatalf("OwnerOnlySDDL(%s) = %q: %v", sid, OwnerOnlySDDL(sid), err)
		}
		acl, err := ReadACL(sd)
		if err != nil {
			t.Fatal(err)
		}
		want := ACL{Owner: sid, HasDACL: true, Protected: true, Entries: []ACE{{Type: AceAllowed, Mask: fileAllAccess, SID: sid}}}
		if diff := cmp.Diff(want, acl); diff != "" {
			t.Errorf("OwnerOnlySDDL(%s) parses to (-want +got):\n%s", sid, diff)
		}
		if x := judge(sid, acl); x.exposed() {
			t.Errorf("judge finds it exposed: %+v", x)
		}
	}
}
