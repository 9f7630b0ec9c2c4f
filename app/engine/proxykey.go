package engine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/authkeeper/authkeeper/keychain"
)

// The proxy spends the user's tokens, so local callers must present a per-install access key: other
// users on the machine and web pages (DNS rebinding, cross-origin requests) cannot read it. It is not
// an OAuth token; it lives in a private file in the config directory and only gates the loopback proxy:
// on Unix mode 0600 in the 0700 directory, on Windows owned by the user with a DACL granting the user
// alone (see keychain.WriteFileAtomic).

// LoadProxyKey reads the access key, creating a random 256-bit key on first use. It refuses a key file
// other users can read or change (keychain.CheckPrivate: one they could write would let them choose
// the key), with what to run to fix it.
func LoadProxyKey(dir string) (string, error) {
	path := filepath.Join(dir, "proxy.key")
	key, err := readProxyKey(path)
	if !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("proxy key: %w", err)
	}
	key = hex.EncodeToString(b)
	// Written to a temp file and linked into place, so a crash never leaves a half-written key and two
	// first starts cannot both win.
	// A directory that cannot be synced still holds the key (as before the one writer, which synced
	// nothing here): only a power cut right now could lose it, and the next start makes a new one.
	if err := keychain.CreateFileAtomic(path, []byte(key+"\n"), 0o600); errors.Is(err, os.ErrExist) {
		return readProxyKey(path) // another process made it first
	} else if err != nil && !errors.Is(err, keychain.ErrNotDurable) {
		return "", fmt.Errorf("proxy key: %w", err)
	}
	return key, nil
}

// readProxyKey reads the key file at path, checking who may read it on the handle it reads from; an
// error satisfies errors.Is(err, os.ErrNotExist) when there is none.
func readProxyKey(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("proxy key: %w", err)
	}
	defer f.Close()
	if err := keychain.CheckPrivate(f); err != nil {
		return "", fmt.Errorf("proxy key: %w; or delete it to make a new one at the next start (agents' configs must then be updated)", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", fmt.Errorf("proxy key: %w", err)
	}
	key := strings.TrimSpace(string(data))
	if len(key) < 32 {
		return "", fmt.Errorf("proxy key %s is malformed; delete it to make a new one (agents' configs must then be updated)", path)
	}
	return key, nil
}

// ProxyKey is the per-install access key the proxy requires.
func (e *Engine) ProxyKey() string { return e.proxyKey }

// ProxyEndpoint is the URL an agent uses for server name: the proxy, the access key as the first path
// segment (for clients that cannot send custom headers), and the server's route.
func (e *Engine) ProxyEndpoint(name string) string {
	base := e.ProxyURL()
	if base == "" {
		return ""
	}
	return base + "/" + e.proxyKey + "/mcp/" + url.PathEscape(name)
}
