package engine

import (
	"context"
	"net"
	"net/http"
	"runtime/pprof"
	"time"
)

// A FrontEnd opens one of the engine's listeners and builds its handler: the wiring passes the proxy's
// and the control API's (Config.Proxy, Config.Control), so that the engine imports neither. Start calls
// each once, holding the owner lock, after the credentials are loaded and before the first refresh;
// Close shuts its server down before the keepers stop, so no request meets a closing keeper.
type FrontEnd func(e *Engine) (net.Listener, http.Handler, error)

// ProfileLabel is the pprof label whose value ("proxy", "control") names the front end a goroutine
// works for.
const ProfileLabel = "authkeeper"

// listen opens the proxy (unless NoProxy) and the control API and serves them until Close.
func (e *Engine) listen() error {
	var proxy, control net.Listener
	var proxyH, controlH http.Handler
	if e.cfg.Proxy != nil && !e.cfg.NoProxy {
		var err error
		if proxy, proxyH, err = e.cfg.Proxy(e); err != nil {
			return err
		}
	}
	if e.cfg.Control != nil {
		var err error
		if control, controlH, err = e.cfg.Control(e); err != nil {
			if proxy != nil {
				proxy.Close()
			}
			return err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.proxy = proxy
	serve := func(l net.Listener, h http.Handler, name string) {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		e.servers = append(e.servers, srv)
		// Every goroutine the server starts inherits the label — connections, handlers, and the
		// transport's own goroutines behind the proxy's upstream requests — so a CPU profile of the
		// process tells the front end's time from the rest (`go tool pprof -tagfocus=authkeeper=proxy`).
		go pprof.Do(context.Background(), pprof.Labels(ProfileLabel, name), func(context.Context) {
			srv.Serve(l) //nolint:errcheck // Serve returns http.ErrServerClosed after Shutdown.
		})
	}
	if proxy != nil {
		serve(proxy, proxyH, "proxy")
	}
	if control != nil {
		serve(control, controlH, "control")
	}
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

// ProxyAddr is the loopback host:port the proxy listens on (port 0: a free one, see ProxyURL).
func (e *Engine) ProxyAddr() string { return e.cfg.ProxyAddr }

// ControlAddr is where the control API listens: its socket path, or on Windows its pipe name (a new
// one for every engine, see newControlAddr).
func (e *Engine) ControlAddr() string { return e.control }

// ConfigFile is the settings file the engine reads.
func (e *Engine) ConfigFile() string { return e.cfg.Paths.ConfigFile() }

// Warning is a message to show at every start (the file store's plain-text warning, a corrupt
// config kept aside), or "".
func (e *Engine) Warning() string { return e.warning }

// Temporary reports whether this engine owns only until the app starts (Config.Temporary).
func (e *Engine) Temporary() bool { return e.cfg.Temporary }
