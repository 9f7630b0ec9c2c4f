package keychain

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestJudgeCountsEveryoneButTheUserSystemAndAdministrators: a file is private when only the user,
// SYSTEM and Administrators may read or change it and one of them owns it; anyone else granted a
// right that reads, writes, appends, deletes or rewrites the DACL or owner, an owner who could rewrite
// the DACL, an owner that cannot be read, no DACL at all, or an allow entry whose principal cannot be
// read exposes it. Deny entries, entries with none of those rights and inherit-only entries change
// nothing.
func TestJudgeCountsEveryoneButTheUserSystemAndAdministrators(t *testing.T) {
	const (
		user, other = "S-1-5-21-1-2-3-1001", "S-1-5-21-1-2-3-1002"
		everyone    = "S-1-1-0"
		users       = "S-1-5-32-545"
		fileAll     = 0x1f01ff
		fileRead    = 0x120089
		wineRead    = 0x1200a9 // what Wine reports for a mode 0644 file's Everyone entry
		writeOnly   = 0x100116 // FILE_GENERIC_WRITE without READ_CONTROL: no read right
		attributes  = 0x120180 // READ_CONTROL, SYNCHRONIZE, FILE_READ_ATTRIBUTES, FILE_WRITE_ATTRIBUTES
	)
	allow := func(sid string, mask uint32) ACE { return ACE{Type: AceAllowed, Mask: mask, SID: sid} }
	mine := func(entries ...ACE) ACL { return ACL{Owner: user, HasDACL: true, Entries: entries} }
	for _, c := range []struct {
		name string
		acl  ACL
		want exposure
	}{
		{"the user alone", mine(allow(user, fileAll)), exposure{}},
		{"the user, SYSTEM and Administrators (a profile's inherited DACL)",
			mine(allow(SIDSystem, fileAll), allow(sidAdministrators, fileAll), allow(user, fileAll)), exposure{}},
		{"owned by Administrators (an elevated creator)",
			ACL{Owner: sidAdministrators, HasDACL: true, Entries: []ACE{allow(user, fileAll)}}, exposure{}},
		{"OWNER RIGHTS with the user owning it", mine(allow(sidOwnerRights, fileAll)), exposure{}},
		{"an empty DACL", mine(), exposure{}},
		{"Everyone may read (Wine's 0644)", mine(allow(user, fileAll), allow(everyone, wineRead)),
			exposure{Others: []string{everyone}}},
		{"Users and another user may read, listed once each and sorted",
			mine(allow(users, fileRead), allow(other, 0x80000000), allow(users, fileAll)),
			exposure{Others: []string{other, users}}},
		{"another user may only write", mine(allow(other, writeOnly)), exposure{Others: []string{other}}},
		{"another user may only append", mine(allow(other, 0x4)), exposure{Others: []string{other}}},
		{"another user holds GENERIC_WRITE", mine(allow(other, 0x40000000)), exposure{Others: []string{other}}},
		{"another user may delete it", mine(allow(other, 0x10000)), exposure{Others: []string{other}}},
		{"another user may rewrite the DACL", mine(allow(other, 0x40000)), exposure{Others: []string{other}}},
		{"another user may take ownership", mine(allow(other, 0x80000)), exposure{Others: []string{other}}},
		{"another user may only read and set attributes", mine(allow(other, attributes)), exposure{}},
		{"another user through a callback entry", mine(ACE{Type: AceAllowedCallback, Mask: fileRead, SID: other}),
			exposure{Others: []string{other}}},
		{"Everyone denied", mine(ACE{Type: 0x1, Mask: fileAll, SID: everyone}), exposure{}},
		{"an inherit-only entry for Users", mine(ACE{Type: AceAllowed, Flags: AceInheritOnly, Mask: fileAll, SID: users}), exposure{}},
		{"an object allow entry", mine(ACE{Type: AceAllowedObject, Mask: fileRead}), exposure{Unreadable: []uint8{AceAllowedObject}}},
		{"no DACL", ACL{Owner: user}, exposure{NoDACL: true}},
		{"owned by another user", ACL{Owner: other, HasDACL: true, Entries: []ACE{allow(user, fileAll)}}, exposure{Owner: other}},
		{"an owner that cannot be read", ACL{HasDACL: true, Entries: []ACE{allow(user, fileAll)}}, exposure{NoOwner: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := judge(user, c.acl)
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("judge (-want +got):\n%s", diff)
			}
			if got.exposed() != !cmp.Equal(c.want, exposure{}) {
				t.Errorf("exposed() = %v for %+v", got.exposed(), got)
			}
		})
	}
}

// TestExposureErrorNamesTheFileWhoAndTheFix: the refusal wraps ErrNotPrivate, names the file and who
// else may read or write it, and gives an icacls command that removes exactly those principals and
// grants the user alone when that fixes it; when only a file of the user's own does (another owner, an
// unreadable one), it says so and gives no command.
func TestExposureErrorNamesTheFileWhoAndTheFix(t *testing.T) {
	const user, path = "S-1-5-21-1-2-3-1001", `C:\Users\alice\AppData\Roaming\authkeeper\proxy.key`
	for _, c := range []struct {
		name  string
		x     exposure
		wants []string
		not   []string
	}{
		{"others", exposure{Others: []string{"S-1-1-0", "S-1-5-32-545"}}, []string{
			path, "S-1-1-0, S-1-5-32-545 may read or write it",
			`icacls "` + path + `" /inheritance:r /grant:r *` + user + `:F /remove:g *S-1-1-0 *S-1-5-32-545` + "`"}, nil},
		{"no DACL", exposure{NoDACL: true}, []string{"no DACL", `/inheritance:r /grant:r *` + user + `:F` + "`"}, []string{"/remove:g"}},
		{"another owner", exposure{Owner: "S-1-5-21-1-2-3-1002"}, []string{"owned by S-1-5-21-1-2-3-1002", "a copy you make"}, []string{"icacls"}},
		{"no owner", exposure{NoOwner: true}, []string{"owner cannot be read", "a copy you make"}, []string{"icacls"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.x.err(path, user)
			if !errors.Is(err, ErrNotPrivate) {
				t.Errorf("error %q does not wrap ErrNotPrivate", err)
			}
			msg := err.Error()
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
