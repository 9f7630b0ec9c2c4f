package engine

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestJudgeDACLCountsEveryoneButTheUserSystemAndAdministrators: a key file is private when only the
// user, SYSTEM and Administrators may read it and one of them owns it; any other reader, an owner who
// could rewrite the DACL, no DACL at all, or an allow entry whose principal cannot be read exposes it.
// Deny entries, entries without a read right and inherit-only entries change nothing.
func TestJudgeDACLCountsEveryoneButTheUserSystemAndAdministrators(t *testing.T) {
	const (
		user, other = "S-1-5-21-1-2-3-1001", "S-1-5-21-1-2-3-1002"
		everyone    = "S-1-1-0"
		users       = "S-1-5-32-545"
		fileAll     = 0x1f01ff
		fileRead    = 0x120089
		wineRead    = 0x1200a9 // what Wine reports for a mode 0644 file's Everyone entry
		writeOnly   = 0x100116 // FILE_GENERIC_WRITE without READ_CONTROL: no read right
	)
	allow := func(sid string, mask uint32) aclEntry { return aclEntry{Type: aceAllowed, Mask: mask, SID: sid} }
	for _, c := range []struct {
		name    string
		owner   string
		noDACL  bool
		entries []aclEntry
		want    keyExposure
	}{
		{"the user alone", user, false, []aclEntry{allow(user, fileAll)}, keyExposure{}},
		{"the user, SYSTEM and Administrators (a profile's inherited DACL)", user, false,
			[]aclEntry{allow(sidSystem, fileAll), allow(sidAdministrators, fileAll), allow(user, fileAll)}, keyExposure{}},
		{"owned by Administrators (an elevated creator)", sidAdministrators, false, []aclEntry{allow(user, fileAll)}, keyExposure{}},
		{"OWNER RIGHTS with the user owning it", user, false, []aclEntry{allow(sidOwnerRights, fileAll)}, keyExposure{}},
		{"an empty DACL", user, false, nil, keyExposure{}},
		{"Everyone may read (Wine's 0644)", user, false, []aclEntry{allow(user, fileAll), allow(everyone, wineRead)},
			keyExposure{Readers: []string{everyone}}},
		{"Users and another user may read, listed once each and sorted", user, false,
			[]aclEntry{allow(users, fileRead), allow(other, 0x80000000), allow(users, fileAll)},
			keyExposure{Readers: []string{other, users}}},
		{"another user may rewrite the DACL", user, false, []aclEntry{allow(other, 0x40000)}, keyExposure{Readers: []string{other}}},
		{"another user through a callback entry", user, false, []aclEntry{{Type: aceAllowedCallback, Mask: fileRead, SID: other}},
			keyExposure{Readers: []string{other}}},
		{"another user may only write", user, false, []aclEntry{allow(other, writeOnly)}, keyExposure{}},
		{"Everyone denied", user, false, []aclEntry{{Type: 0x1, Mask: fileAll, SID: everyone}}, keyExposure{}},
		{"an inherit-only entry for Users", user, false, []aclEntry{{Type: aceAllowed, Flags: aceInheritOnly, Mask: fileAll, SID: users}}, keyExposure{}},
		{"an object allow entry", user, false, []aclEntry{{Type: aceAllowedObject, Mask: fileRead}}, keyExposure{Unreadable: []uint8{aceAllowedObject}}},
		{"no DACL", user, true, nil, keyExposure{NoDACL: true}},
		{"owned by another user", other, false, []aclEntry{allow(user, fileAll)}, keyExposure{Owner: other}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := judgeDACL(user, c.owner, !c.noDACL, c.entries)
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("judgeDACL (-want +got):\n%s", diff)
			}
			if exposed := len(c.want.Readers) > 0 || len(c.want.Unreadable) > 0 || c.want.NoDACL || c.want.Owner != ""; got.exposed() != exposed {
				t.Errorf("exposed() = %v, want %v", got.exposed(), exposed)
			}
		})
	}
}

// TestKeyExposureErrorNamesTheFileTheReadersAndTheFix: the refusal names the file and who can read
// it, and gives an icacls command that removes exactly those readers and grants the user alone when
// that fixes it; when only deleting the file does (another owner), it says so and gives no command.
func TestKeyExposureErrorNamesTheFileTheReadersAndTheFix(t *testing.T) {
	const user, path = "S-1-5-21-1-2-3-1001", `C:\Users\alice\AppData\Roaming\authkeeper\proxy.key`
	for _, c := range []struct {
		name  string
		x     keyExposure
		wants []string
		not   []string
	}{
		{"readers", keyExposure{Readers: []string{"S-1-1-0", "S-1-5-32-545"}}, []string{
			path, "readable by S-1-1-0, S-1-5-32-545",
			`icacls "` + path + `" /inheritance:r /grant:r *` + user + `:F /remove:g *S-1-1-0 *S-1-5-32-545`,
			"delete it"}, nil},
		{"no DACL", keyExposure{NoDACL: true}, []string{"no DACL", `/inheritance:r /grant:r *` + user + `:F` + "`"}, []string{"/remove:g"}},
		{"another owner", keyExposure{Owner: "S-1-5-21-1-2-3-1002"}, []string{"owned by S-1-5-21-1-2-3-1002", "delete it"}, []string{"icacls"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg := c.x.err(path, user).Error()
			for _, w := range c.wants {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			for _, n := range c.not {
				if strings.Contains(msg, n) {
					t.Errorf("error %q contains %q", msg, n)
				}
			}
		})
	}
}
