package keychain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrNotPrivate: a file that must be the user's alone (the file store, the proxy key) lets someone
// else read or change it. CheckPrivate's errors wrap it and say how to fix the file.
var ErrNotPrivate = errors.New("is not private to you")

// On Windows a file's mode says nothing about who may open it (Go reports 0666 for every file); its
// owner and DACL do. The rules that judge them are here, free of Windows calls, so that they are tested
// on every OS; private_windows.go reads the real descriptor.

// ACL is an object's owner and DACL, as much of them as the privacy rules read.
type ACL struct {
	Owner     string // the owner's SID
	HasDACL   bool   // false: no DACL (or a NULL one), which grants everyone everything
	Protected bool   // the DACL inherits nothing from the parent (SE_DACL_PROTECTED)
	Entries   []ACE  // the DACL's entries, in order
}

// ACE is one access control entry of a DACL.
type ACE struct {
	Type  uint8  // ACE type: AceAllowed, AceAllowedCallback, a deny type, ...
	Flags uint8  // ACE flags: AceInheritOnly entries apply to a directory's children, not to it
	Mask  uint32 // access mask
	SID   string // the principal, for the types whose SID follows the mask (AceAllowed, AceAllowedCallback)
}

// ACE types and flags (winnt.h) that the rules tell apart. Every other type either denies (and so
// narrows who may open the file) or does not belong in a DACL.
const (
	AceAllowed               = 0x0
	AceAllowedCompound       = 0x4
	AceAllowedObject         = 0x5
	AceAllowedCallback       = 0x9
	AceAllowedCallbackObject = 0xB
	AceInheritOnly           = 0x8
)

// Applies reports whether e is an allow entry that applies to the object itself (not inherit-only);
// for the object allow types it has no SID (the rules cannot read theirs).
func (e ACE) Applies() bool {
	if e.Flags&AceInheritOnly != 0 {
		return false
	}
	switch e.Type {
	case AceAllowed, AceAllowedCallback, AceAllowedCompound, AceAllowedObject, AceAllowedCallbackObject:
		return true
	}
	return false
}

// exposingRights are the access rights with which another principal could read the file or plant
// content of its choosing: read its data (FILE_READ_DATA, or GENERIC_READ), write or append to it
// (FILE_WRITE_DATA, FILE_APPEND_DATA, GENERIC_WRITE), delete it (DELETE: the tokens in the file store
// would be lost, and a file put in its place is no longer the user's), anything (GENERIC_ALL), or
// rewrite its DACL or owner (WRITE_DAC, WRITE_OWNER) and then do any of those. Attributes, extended
// attributes and READ_CONTROL reveal or change nothing of the content.
const exposingRights = 0x1 | 0x2 | 0x4 | // FILE_READ_DATA, FILE_WRITE_DATA, FILE_APPEND_DATA
	0x10000 | 0x40000 | 0x80000 | // DELETE, WRITE_DAC, WRITE_OWNER
	0x80000000 | 0x40000000 | 0x10000000 // GENERIC_READ, GENERIC_WRITE, GENERIC_ALL

// SIDs the rules accept besides the user's. SYSTEM and Administrators open every file whatever its
// DACL says (backup and restore privileges, taking ownership), so an entry that names them exposes
// nothing — a file made in the profile inherits exactly such entries; refusing it would send the user
// to icacls for no gain. OWNER RIGHTS stands for the owner, who is judged as such.
const (
	SIDSystem         = "S-1-5-18"
	sidAdministrators = "S-1-5-32-544"
	sidOwnerRights    = "S-1-3-4"
)

// exposure is who, besides the user, can open a file; the zero value: nobody.
type exposure struct {
	Others     []string // SIDs granted an exposing right by an entry that applies to the file, sorted
	Unreadable []uint8  // types of allow entries whose principal the rules cannot read (object ACEs)
	NoDACL     bool     // the file has no DACL, which grants everyone everything
	NoOwner    bool     // the file's owner could not be read: it may be anyone
	Owner      string   // the owner's SID when it is someone else: an owner may rewrite the DACL at will
}

// judge says who other than user (a SID) can read or change a file whose owner and DACL are a.
func judge(user string, a ACL) exposure {
	trusted := func(sid string) bool { return sid == user || sid == SIDSystem || sid == sidAdministrators }
	var x exposure
	switch {
	case a.Owner == "":
		x.NoOwner = true
	case !trusted(a.Owner):
		x.Owner = a.Owner
	}
	if !a.HasDACL {
		x.NoDACL = true
		return x
	}
	for _, e := range a.Entries {
		if !e.Applies() || e.Mask&exposingRights == 0 {
			continue
		}
		switch e.Type {
		case AceAllowed, AceAllowedCallback:
			if !trusted(e.SID) && e.SID != sidOwnerRights && !slices.Contains(x.Others, e.SID) {
				x.Others = append(x.Others, e.SID)
			}
		default:
			x.Unreadable = append(x.Unreadable, e.Type)
		}
	}
	slices.Sort(x.Others)
	return x
}

// exposed reports whether anyone besides the user can read or change the file.
func (x exposure) exposed() bool {
	return x.NoDACL || x.NoOwner || x.Owner != "" || len(x.Others) > 0 || len(x.Unreadable) > 0
}

// err explains the exposure of the file at path, wrapping ErrNotPrivate, and how the user (SID user)
// fixes it: an icacls command that drops the inherited entries and the others' and grants the user
// alone, when that is enough; when the owner is someone else (or unknown), only a file of the user's
// own in its place is.
func (x exposure) err(path, user string) error {
	var why []string
	if x.NoOwner {
		why = append(why, "its owner cannot be read")
	}
	if x.Owner != "" {
		why = append(why, "it is owned by "+x.Owner+", who may change its permissions")
	}
	if x.NoDACL {
		why = append(why, "it has no DACL, so everyone may read and write it")
	}
	if len(x.Others) > 0 {
		why = append(why, strings.Join(x.Others, ", ")+" may read or write it")
	}
	if len(x.Unreadable) > 0 {
		why = append(why, fmt.Sprintf("allow entries of types %v whose principals authkeeper cannot check", x.Unreadable))
	}
	if x.NoOwner || x.Owner != "" || len(x.Unreadable) > 0 {
		return fmt.Errorf("%s %w (%s); replace it with a copy you make yourself", path, ErrNotPrivate, strings.Join(why, "; "))
	}
	return fmt.Errorf("%s %w (%s); run `%s`", path, ErrNotPrivate, strings.Join(why, "; "), icaclsPrivate(path, user, x.Others))
}

// icaclsPrivate is the icacls command that leaves path to user alone: inherited entries dropped
// (/inheritance:r), user granted full control in place of any earlier grant (/grant:r), and every
// other principal's grants removed (/remove:g). "*SID" names a principal by SID, so the command works
// whatever the account is called and in any language.
func icaclsPrivate(path, user string, others []string) string {
	cmd := fmt.Sprintf(`icacls "%s" /inheritance:r /grant:r *%s:F`, path, user)
	if len(others) > 0 {
		cmd += " /remove:g *" + strings.Join(others, " *")
	}
	return cmd
}

// OwnerOnlySDDL is the security descriptor, in SDDL, of an object (a file, a named pipe) only the user
// with SID userSID may open on Windows: that user owns it (so even an elevated process, whose default
// owner is Administrators, leaves it to the user) and a protected DACL (P: nothing inherited from the
// parent) grants the user full control (FA, FILE_ALL_ACCESS: named pipes are file objects too) and
// nobody else anything. Not SYSTEM and not Administrators: no service needs these objects, and both
// can open any file anyway (backup privilege, taking ownership), so granting them would only widen
// the ACL without serving anyone. An elevated process of the same user is still that user (same SID).
func OwnerOnlySDDL(userSID string) string {
	return "O:" + userSID + "D:P(A;;FA;;;" + userSID + ")"
}
