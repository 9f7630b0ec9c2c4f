package engine

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/windows"
)

// checkPrivate refuses a key file whose owner or DACL lets anyone but the user read it (judgeDACL):
// on Windows a file's mode says nothing about that.
func checkPrivate(path string) error {
	user := userSID()
	if user == "" {
		return fmt.Errorf("proxy key %s: cannot tell who you are to check who may read it", path)
	}
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return fmt.Errorf("proxy key %s: read its permissions: %w", path, err)
	}
	owner := ""
	if sid, _, err := sd.Owner(); err == nil && sid != nil {
		owner = sid.String()
	}
	entries, hasDACL, err := daclEntries(sd)
	if err != nil {
		return fmt.Errorf("proxy key %s: read its permissions: %w", path, err)
	}
	if x := judgeDACL(user, owner, hasDACL, entries); x.exposed() {
		return x.err(path, user)
	}
	return nil
}

// daclEntries lists sd's DACL; hasDACL is false when it has none (or a NULL one), which grants
// everyone everything.
func daclEntries(sd *windows.SECURITY_DESCRIPTOR) (entries []aclEntry, hasDACL bool, err error) {
	dacl, _, err := sd.DACL()
	if errors.Is(err, windows.ERROR_OBJECT_NOT_FOUND) || (err == nil && dacl == nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	for i := range uint32(dacl.AceCount) {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return nil, true, fmt.Errorf("entry %d: %w", i, err)
		}
		e := aclEntry{Type: ace.Header.AceType, Flags: ace.Header.AceFlags, Mask: uint32(ace.Mask)}
		if e.Type == aceAllowed || e.Type == aceAllowedCallback {
			// These types are ACCESS_ALLOWED_ACE's layout: the SID starts where SidStart is.
			e.SID = (*windows.SID)(unsafe.Pointer(&ace.SidStart)).String()
		}
		entries = append(entries, e)
	}
	return entries, true, nil
}
