//go:build unix

package app

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// journalStderr reports whether w, the process's stderr, is a stream the systemd journal reads: what
// $JOURNAL_STREAM (device:inode, set by systemd for a service's stdout and stderr) names. The
// variable alone is not enough — it is inherited by every child, down to a shell in a terminal that
// a user service started — so the device and inode must be w's own, as systemd.exec(5) advises.
func journalStderr(getenv func(string) string, w io.Writer) bool {
	js := getenv("JOURNAL_STREAM")
	f, ok := w.(*os.File)
	if js == "" || !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && js == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
