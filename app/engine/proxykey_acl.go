package engine

import (
	"fmt"
	"slices"
	"strings"
)

// On Windows a file's mode says nothing about who may read it (Go reports 0666 for every file); its
// owner and DACL do. The rules that judge them are here, free of Windows calls, so that they are tested
// on every OS; proxykey_windows.go reads the real descriptor.

// aclEntry is one access control entry of a file's DACL, as much of it as judgeDACL needs.
type aclEntry struct {
	Type  uint8  // ACE type: aceAllowed, aceAllowedCallback, a deny type, ...
	Flags uint8  // ACE flags: aceInheritOnly entries apply to a directory's children, not to it
	Mask  uint32 // access mask
	SID   string // the principal, for the types whose SID follows the mask (aceAllowed, aceAllowedCallback)
}

// ACE types and flags (winnt.h) that judgeDACL tells apart. Every other type either denies (and so
// narrows who may read) or does not belong in a DACL.
const (
	aceAllowed               = 0x0
	aceAllowedCompound       = 0x4
	aceAllowedObject         = 0x5
	aceAllowedCallback       = 0x9
	aceAllowedCallbackObject = 0xB
	aceInheritOnly           = 0x8
)

// readRights are the access rights with which a principal can read the file: read its data (directly
// or through GENERIC_READ or GENERIC_ALL), or rewrite its DACL or owner (WRITE_DAC, WRITE_OWNER) and
// then read it.
const readRights = 0x1 | 0x80000000 | 0x10000000 | 0x40000 | 0x80000

// SIDs judgeDACL accepts besides the user's. SYSTEM and Administrators read every file whatever its
// DACL says (backup privilege, taking ownership), so an entry that names them exposes nothing —
// a file made in the profile inherits exactly such entries; refusing it would send the user to icacls
// for no gain. OWNER RIGHTS stands for the owner, who is judged as such.
const (
	sidSystem         = "S-1-5-18"
	sidAdministrators = "S-1-5-32-544"
	sidOwnerRights    = "S-1-3-4"
)

// keyExposure is who, besides the user, can read a key file; the zero value: nobody.
type keyExposure struct {
	Readers    []string // SIDs granted a read right by an entry that applies to the file, sorted
	Unreadable []uint8  // types of allow entries whose principal this check cannot read (object ACEs)
	NoDACL     bool     // the file has no DACL, which grants everyone everything
	Owner      string   // the owner's SID when it is someone else: an owner may rewrite the DACL at will
}

// judgeDACL says who other than user can read a file owned by owner whose DACL holds entries
// (hasDACL false: it has no DACL at all).
func judgeDACL(user, owner string, hasDACL bool, entries []aclEntry) keyExposure {
	trusted := func(sid string) bool { return sid == user || sid == sidSystem || sid == sidAdministrators }
	var x keyExposure
	if !trusted(owner) {
		x.Owner = owner
	}
	if !hasDACL {
		x.NoDACL = true
		return x
	}
	for _, e := range entries {
		if e.Flags&aceInheritOnly != 0 || e.Mask&readRights == 0 {
			continue
		}
		switch e.Type {
		case aceAllowed, aceAllowedCallback:
			if !trusted(e.SID) && e.SID != sidOwnerRights && !slices.Contains(x.Readers, e.SID) {
				x.Readers = append(x.Readers, e.SID)
			}
		case aceAllowedCompound, aceAllowedObject, aceAllowedCallbackObject:
			x.Unreadable = append(x.Unreadable, e.Type)
		}
	}
	slices.Sort(x.Readers)
	return x
}

// exposed reports whether anyone besides the user can read the file.
func (x keyExposure) exposed() bool {
	return x.NoDACL || x.Owner != "" || len(x.Readers) > 0 || len(x.Unreadable) > 0
}

// err explains the exposure of the key file at path and how the user (SID user) fixes it: an icacls
// command that drops the inherited entries and the readers' and grants the user alone, when that is
// enough; deleting the file (a new key is made at the next start) always is.
func (x keyExposure) err(path, user string) error {
	var who []string
	if x.NoDACL {
		who = append(who, "it has no DACL, so everyone may read it")
	}
	if x.Owner != "" {
		who = append(who, "it is owned by "+x.Owner+", who may change its permissions")
	}
	if len(x.Readers) > 0 {
		who = append(who, "readable by "+strings.Join(x.Readers, ", "))
	}
	if len(x.Unreadable) > 0 {
		who = append(who, fmt.Sprintf("allow entries of types %v whose principals authkeeper cannot check", x.Unreadable))
	}
	const recreate = "delete it to make a new one at the next start (agents' configs must then be updated)"
	if x.Owner != "" || len(x.Unreadable) > 0 {
		return fmt.Errorf("proxy key %s is not private to you (%s); %s", path, strings.Join(who, "; "), recreate)
	}
	return fmt.Errorf("proxy key %s is not private to you (%s); run `%s`, or %s", path, strings.Join(who, "; "),
		icaclsPrivate(path, user, x.Readers), recreate)
}

// icaclsPrivate is the icacls command that leaves path readable by user alone: inherited entries
// dropped (/inheritance:r), user granted full control in place of any earlier grant (/grant:r), and
// every other reader's grants removed (/remove:g). "*SID" names a principal by SID, so the command
// works whatever the account is called and in any language.
func icaclsPrivate(path, user string, readers []string) string {
	cmd := fmt.Sprintf(`icacls "%s" /inheritance:r /grant:r *%s:F`, path, user)
	if len(readers) > 0 {
		cmd += " /remove:g *" + strings.Join(readers, " *")
	}
	return cmd
}
