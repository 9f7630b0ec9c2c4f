package app

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// listen opens the proxy (unless NoProxy) and the control socket and serves them until Close.
func (e *Engine) listen() error {
	sock := e.cfg.Paths.ControlSocket()
	// We hold the owner lock, so a socket file left behind belongs to a dead owner.
	if err := os.Remove(sock); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("control API: remove stale socket %s: %w", sock, err)
	}
	var proxy net.Listener
	if !e.cfg.NoProxy {
		var err error
		if proxy, err = net.Listen("tcp", e.cfg.ProxyAddr); err != nil {
			return fmt.Errorf("proxy: listen on %s: %w (set another port with --proxy-addr)", e.cfg.ProxyAddr, err)
		}
	}
	control, err := net.Listen("unix", sock)
	if err != nil {
		if proxy != nil {
			proxy.Close()
		}
		return fmt.Errorf("control API: listen on %s: %w", sock, err)
	}
	// The socket directory is 0700 already; the socket itself is owner-only too, because the control API
	// hands out tokens.
	if err := os.Chmod(sock, 0o600); err != nil {
		control.Close()
		if proxy != nil {
			proxy.Close()
		}
		return fmt.Errorf("control API: restrict %s: %w", sock, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.proxy = proxy
	serve := func(l net.Listener, h http.Handler) {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		e.servers = append(e.servers, srv)
		go srv.Serve(l) //nolint:errcheck // Serve returns http.ErrServerClosed after Shutdown.
	}
	if proxy != nil {
		serve(proxy, e.proxyHandler())
	}
	serve(control, e.controlHandler())
	return nil
}

// ProxyURL is the base URL of the MCP proxy, e.g. http://127.0.0.1:47615, or "" without a proxy.
func (e *Engine) ProxyURL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.proxy == nil {
		return ""
	}
	return "http://" + e.proxy.Addr().String()
}

// ControlAddr is the control API's socket path.
func (e *Engine) ControlAddr() string { return e.cfg.Paths.ControlSocket() }

// ConfigFile is the settings file the engine reads.
func (e *Engine) ConfigFile() string { return e.cfg.Paths.ConfigFile() }

// Warning is a message to show at every start (the file store's plain-text warning, a corrupt
// config kept aside), or "".
func (e *Engine) Warning() string { return e.warning }
