package engine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/authkeeper/authkeeper/keychain"
)

// The proxy spends the user's tokens, so local callers must present a per-install access key: other
// users on the machine and web pages (DNS rebinding, cross-origin requests) cannot read it. It is not
// an OAuth token; it lives in a private file in the config directory and only gates the loopback proxy:
// on Unix mode 0600 in the 0700 directory, on Windows a protected DACL granting the user alone (see
// keychain.WriteFileAtomic).

// LoadProxyKey reads the access key, creating a random 256-bit key on first use. It refuses a key file
// other users can read (checkPrivate), with what to run to fix it.
func LoadProxyKey(dir string) (string, error) {
	path := filepath.Join(dir, "proxy.key")
	if _, err := os.Stat(path); err == nil {
		if err := checkPrivate(path); err != nil {
			return "", err
		}
	}
	data, err := os.ReadFile(path)
	if err == nil {
		key := strings.TrimSpace(string(data))
		if len(key) >= 32 {
			return key, nil
		}
		return "", fmt.Errorf("proxy key %s is malformed; delete it to make a new one (agents' configs must then be updated)", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("proxy key: %w", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("proxy key: %w", err)
	}
	key := hex.EncodeToString(b)
	// Written to a temp file and linked into place, so a crash never leaves a half-written key and two
	// first starts cannot both win.
	// A directory that cannot be synced still holds the key (as before the one writer, which synced
	// nothing here): only a power cut right now could lose it, and the next start makes a new one.
	if err := keychain.CreateFileAtomic(path, []byte(key+"\n"), 0o600); errors.Is(err, os.ErrExist) {
		return LoadProxyKey(dir) // another process made it first
	} else if err != nil && !errors.Is(err, keychain.ErrNotDurable) {
		return "", fmt.Errorf("proxy key: %w", err)
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
