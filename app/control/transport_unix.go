//go:build !windows

package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
)

// ErrNotYours is never returned on Unix: the socket's 0700 directory keeps other users from placing
// one there (see transport_windows.go for why Windows needs it).
var ErrNotYours = errors.New("the control socket is not yours")

// listen opens the control API's unix socket at sock, owner-only. A socket file already there belongs
// to a dead owner (the caller holds the owner lock) and is removed first.
func listen(sock string) (net.Listener, error) {
	if err := os.Remove(sock); err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("control API: remove stale socket %s: %w", sock, err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("control API: listen on %s: %w", sock, err)
	}
	// The socket directory is 0700 already; the socket itself is owner-only too, because the control API
	// hands out tokens.
	if err := os.Chmod(sock, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("control API: restrict %s: %w", sock, err)
	}
	return l, nil
}

// dial connects to the control socket at sock.
func dial(ctx context.Context, sock string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", sock)
}
