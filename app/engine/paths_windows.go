package engine

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/authkeeper/authkeeper/keychain"
)

// newControlAddr is the named pipe an engine with paths p listens on: the prefix PipeName derives and
// 128 random bits, new for every engine, so that no other local user can create the pipe before the
// owner does (see PipeName). Clients read it from the owner lock (OwnerSocket).
func newControlAddr(p Paths) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("control pipe name: %w", err)
	}
	return defaultControlAddr(p) + "-" + hex.EncodeToString(b), nil
}

// defaultControlAddr is the pipe name's prefix for p and this user (see OwnerSocket). Should the
// user's SID be unknown (it is not in practice), the prefix names the runtime directory alone: the
// random suffix still keeps every owner's name its own, and the pipe's ACL and the clients' owner
// check keep other users out.
func defaultControlAddr(p Paths) string {
	if sid, err := keychain.UserSID(); err == nil {
		return PipeName(p.RuntimeDir, sid)
	}
	return PipeName(p.RuntimeDir, "")
}

// isControlAddr reports whether s, read back from the owner lock, can be a control address: a local
// named pipe.
func isControlAddr(s string) bool { return strings.HasPrefix(s, `\\.\pipe\`) }

// removeControlAddr does nothing: a named pipe is no file, it is gone once its listener is closed.
func removeControlAddr(string) {}
