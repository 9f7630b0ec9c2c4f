package engine

import (
	"strings"
	"sync"

	"golang.org/x/sys/windows"
)

// controlAddr is the control API's named pipe for this user and RuntimeDir (see PipeName).
func controlAddr(p Paths) string { return PipeName(p.RuntimeDir, userSID()) }

// isControlAddr reports whether s, read back from the owner lock, can be a control address: a local
// named pipe.
func isControlAddr(s string) bool { return strings.HasPrefix(s, `\\.\pipe\`) }

// removeControlAddr does nothing: a named pipe is no file, it is gone once its listener is closed.
func removeControlAddr(Paths) {}

// userSID is the SID of the user this process runs as, in string form. It cannot change while the
// process lives, so it is looked up once. Should the lookup fail (it does not in practice), the pipe
// name still differs per runtime directory, and the pipe's ACL and owner check still keep other users
// out: only its uniqueness across users is lost.
var userSID = sync.OnceValue(func() string {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return ""
	}
	return tu.User.Sid.String()
})
