package keychain

import (
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"golang.org/x/sys/windows"
)

// grantees lists the SIDs path's DACL grants anything to, and its owner.
func grantees(t *testing.T, path string) (owner string, sids []string) {
	t.Helper()
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %s", filepath.Base(path), sd)
	o, _, err := sd.Owner()
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, err := sd.DACL()
	if err != nil || dacl == nil {
		t.Fatalf("%s has no DACL (%v)", path, err)
	}
	for i := range uint32(dacl.AceCount) {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			t.Fatal(err)
		}
		if ace.Header.AceType == windows.ACCESS_ALLOWED_ACE_TYPE && ace.Header.AceFlags&windows.INHERIT_ONLY_ACE == 0 {
			sids = append(sids, (*windows.SID)(unsafe.Pointer(&ace.SidStart)).String())
		}
	}
	return o.String(), sids
}

// TestOwnerOnlyPermMakesFilesPrivateByDACLOnWindows: WriteFileAtomic and CreateFileAtomic with an
// owner-only perm make a file the user owns and whose DACL grants no one else, also when it replaces
// a file Everyone could read. SYSTEM is tolerated because Wine reports it on every file (it derives
// the DACL from the Unix mode); on Windows the DACL holds the user alone.
func TestOwnerOnlyPermMakesFilesPrivateByDACLOnWindows(t *testing.T) {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		t.Fatal(err)
	}
	user := tu.User.Sid.String()
	dir := testbed.TempDir(t)
	replaced := filepath.Join(dir, "replaced.json")
	if err := WriteFileAtomic(replaced, []byte("wide"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		write func(path string) error
		path  string
	}{
		{"a new file", func(p string) error { return WriteFileAtomic(p, []byte("x"), 0o600) }, filepath.Join(dir, "new.json")},
		{"a replaced file", func(p string) error { return WriteFileAtomic(p, []byte("x"), 0o600) }, replaced},
		{"an exclusive create", func(p string) error { return CreateFileAtomic(p, []byte("x"), 0o600) }, filepath.Join(dir, "proxy.key")},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.write(c.path); err != nil {
				t.Fatal(err)
			}
			wantFile(t, c.path, "x", 0o600)
			owner, sids := grantees(t, c.path)
			if owner != user {
				t.Errorf("owner %s, want the user %s", owner, user)
			}
			hasUser := false
			for _, s := range sids {
				switch s {
				case user:
					hasUser = true
				case "S-1-5-18": // SYSTEM: see above
				default:
					t.Errorf("the DACL grants %s", s)
				}
			}
			if !hasUser {
				t.Errorf("the DACL %v does not grant the user", sids)
			}
		})
	}
}

// TestWriteFileAtomicWaitsForAReaderThatHoldsTheFileOpen: on Windows a file another handle holds open
// cannot be replaced (Go opens files without FILE_SHARE_DELETE); WriteFileAtomic retries until the
// reader closes it instead of failing with "Access is denied".
func TestWriteFileAtomicWaitsForAReaderThatHoldsTheFileOpen(t *testing.T) {
	path := filepath.Join(testbed.TempDir(t), "config.json")
	if err := WriteFileAtomic(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	reader, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	time.AfterFunc(200*time.Millisecond, func() { closed <- reader.Close() })
	if err := WriteFileAtomic(path, []byte("new"), 0o600); err != nil {
		t.Fatalf("replace while a reader holds the file: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wantFile(t, path, "new", 0o600)
}
