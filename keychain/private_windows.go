package keychain

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// UserSID is the SID of the user this process runs as, in string form (S-1-5-21-…-1001): the owner
// of the files and the pipe authkeeper makes private. It cannot change while the process lives, so it
// is looked up once.
func UserSID() (string, error) { return userSID() }

var userSID = sync.OnceValues(func() (string, error) {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", fmt.Errorf("find the current user: %w", err)
	}
	return tu.User.Sid.String(), nil
})

// CheckPrivate returns an error wrapping ErrNotPrivate, naming f's file and the icacls command that
// fixes it, unless only the user can read or change it: on Windows its owner must be the user (or
// SYSTEM, or Administrators) and its DACL may grant no one else a right that reads or changes the
// content (see judge). The descriptor is read from the open handle, so it is the file being read
// that is judged, not one swapped in at the same path since.
func CheckPrivate(f *os.File) error {
	user, err := UserSID()
	if err != nil {
		return fmt.Errorf("%s: cannot tell who may read it: %w", f.Name(), err)
	}
	sd, err := windows.GetSecurityInfo(windows.Handle(f.Fd()), windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("%s: read its permissions: %w", f.Name(), err)
	}
	acl, err := ReadACL(sd)
	if err != nil {
		return fmt.Errorf("%s: read its permissions: %w", f.Name(), err)
	}
	if x := judge(user, acl); x.exposed() {
		return x.err(f.Name(), user)
	}
	return nil
}

// ReadACL reads sd's owner and DACL. An owner that cannot be read is an error: it could be anyone.
func ReadACL(sd *windows.SECURITY_DESCRIPTOR) (ACL, error) {
	var a ACL
	owner, _, err := sd.Owner()
	if err != nil {
		return a, fmt.Errorf("owner: %w", err)
	}
	if owner == nil {
		return a, errors.New("the security descriptor has no owner")
	}
	a.Owner = owner.String()
	ctl, _, err := sd.Control()
	if err != nil {
		return a, fmt.Errorf("control flags: %w", err)
	}
	a.Protected = ctl&windows.SE_DACL_PROTECTED != 0
	dacl, _, err := sd.DACL()
	if errors.Is(err, windows.ERROR_OBJECT_NOT_FOUND) || (err == nil && dacl == nil) {
		return a, nil // no DACL: HasDACL stays false
	}
	if err != nil {
		return a, fmt.Errorf("DACL: %w", err)
	}
	a.HasDACL = true
	for i := range uint32(dacl.AceCount) {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return a, fmt.Errorf("DACL entry %d: %w", i, err)
		}
		e := ACE{Type: ace.Header.AceType, Flags: ace.Header.AceFlags, Mask: uint32(ace.Mask)}
		if e.Type == AceAllowed || e.Type == AceAllowedCallback {
			// These types are ACCESS_ALLOWED_ACE's layout: the SID starts where SidStart is.
			e.SID = (*windows.SID)(unsafe.Pointer(&ace.SidStart)).String()
		}
		a.Entries = append(a.Entries, e)
	}
	return a, nil
}

// CheckOwnerOnly returns an error saying how path is not the user's alone: it must be owned by the user,
// have a DACL, and every entry of it that grants anything on the file must grant the user or SYSTEM,
// which Wine reports on every file (it derives the DACL from the Unix mode; Windows shows the user
// alone). Stricter than CheckPrivate, which also accepts what a file made in the profile inherits
// (Administrators): it is what a file authkeeper creates private must satisfy, and the tests of every
// package that creates one check it.
func CheckOwnerOnly(path string) error {
	user, err := UserSID()
	if err != nil {
		return err
	}
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	acl, err := ReadACL(sd)
	if err != nil {
		return fmt.Errorf("%s: %w (%s)", path, err, sd)
	}
	if acl.Owner != user {
		return fmt.Errorf("%s: owner %s, want the user %s (%s)", path, acl.Owner, user, sd)
	}
	if !acl.HasDACL {
		return fmt.Errorf("%s: no DACL (%s)", path, sd)
	}
	var grantees []string
	for _, e := range acl.Entries {
		if e.Applies() {
			grantees = append(grantees, e.SID)
		}
	}
	if !slices.Contains(grantees, user) || slices.ContainsFunc(grantees, func(s string) bool { return s != user && s != SIDSystem }) {
		return fmt.Errorf("%s: the DACL grants %q, want the user %s alone (%s)", path, grantees, user, sd)
	}
	return nil
}
