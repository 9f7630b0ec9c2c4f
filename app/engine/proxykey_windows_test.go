package engine

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"golang.org/x/sys/windows"
)

// privacyFixHint is what the refusal of an exposed key tells the user to run.
const privacyFixHint = "icacls"

// widenKey adds an entry that lets Everyone read the key file, keeping the user's.
func widenKey(t *testing.T, path string) {
	t.Helper()
	sd, err := windows.SecurityDescriptorFromString("D:P(A;;FA;;;" + userSID() + ")(A;;FR;;;WD)")
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
	if x := readKeyDACL(t, path); !slices.Contains(x.Readers, "S-1-1-0") {
		t.Fatalf("after adding Everyone, the DACL's other readers are %v", x.Readers)
	}
}

// TestNewProxyKeyFileIsOwnedByTheUserAndGrantsNoOneElse: the key file LoadProxyKey makes is owned by
// the user, its DACL grants the user, and no other principal may read it (SYSTEM and Administrators
// aside, see judgeDACL: Wine reports SYSTEM on every file).
func TestNewProxyKeyFileIsOwnedByTheUserAndGrantsNoOneElse(t *testing.T) {
	dir := testbed.TempDir(t)
	if _, err := LoadProxyKey(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "proxy.key")
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("proxy.key's security descriptor: %s", sd)
	if owner, _, err := sd.Owner(); err != nil || owner.String() != userSID() {
		t.Errorf("owner %v (%v), want the user %s", owner, err, userSID())
	}
	entries, hasDACL, err := daclEntries(sd)
	if err != nil || !hasDACL {
		t.Fatalf("DACL %v, %v", hasDACL, err)
	}
	if !slices.ContainsFunc(entries, func(e aclEntry) bool { return e.Type == aceAllowed && e.SID == userSID() }) {
		t.Errorf("the DACL %+v grants the user nothing", entries)
	}
	if x := readKeyDACL(t, path); x.exposed() {
		t.Errorf("the new key is exposed: %+v", x)
	}
}

// readKeyDACL judges the key file's real descriptor.
func readKeyDACL(t *testing.T, path string) keyExposure {
	t.Helper()
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	owner, _, err := sd.Owner()
	if err != nil {
		t.Fatal(err)
	}
	entries, hasDACL, err := daclEntries(sd)
	if err != nil {
		t.Fatal(err)
	}
	return judgeDACL(userSID(), owner.String(), hasDACL, entries)
}
