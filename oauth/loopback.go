package oauth

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// callback is the first authorization response delivered to the loopback listener. The handler waits
// on reply for the outcome of the whole sign-in, so the page tells the user the truth.
type callback struct {
	query url.Values
	reply chan error
}

// loopback is the short-lived RFC 8252 §7.3 redirect listener of one sign-in. It accepts only the first
// request to the callback path; later ones get a page saying the sign-in is already handled.
type loopback struct {
	ln       net.Listener
	srv      *http.Server
	got      chan callback
	accepted atomic.Bool
}

// listenLoopback binds 127.0.0.1 (never all interfaces) on port, or a random port when port is 0.
func listenLoopback(port int) (*loopback, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		if port != 0 {
			return nil, fmt.Errorf("listen on the registered redirect port 127.0.0.1:%d (is another sign-in or program using it?): %w", port, err)
		}
		return nil, fmt.Errorf("listen on loopback: %w", err)
	}
	l := &loopback{ln: ln, got: make(chan callback, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+redirectPath, l.handle)
	l.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = l.srv.Serve(ln) }() // returns http.ErrServerClosed on close
	return l, nil
}

// port is the listener's port.
func (l *loopback) port() int { return l.ln.Addr().(*net.TCPAddr).Port }

// rearm makes the listener accept a callback again, for a sign-in that asks the AS a second time. The
// previous callback must have been answered.
func (l *loopback) rearm() { l.accepted.Store(false) }

// redirectURI is the redirect_uri of this listener, with its port.
func (l *loopback) redirectURI() string {
	return "http://" + l.ln.Addr().String() + redirectPath
}

func (l *loopback) handle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if !l.accepted.CompareAndSwap(false, true) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, page("Sign-in already handled", "This sign-in has already received its answer. You can close this tab."))
		return
	}
	cb := callback{query: r.URL.Query(), reply: make(chan error, 1)}
	l.got <- cb
	var err error
	select {
	case err = <-cb.reply:
	case <-r.Context().Done():
		return
	}
	if errors.Is(err, errRetrying) {
		fmt.Fprint(w, page("One more step", "The authorization server needs to be asked again. Continue in the new browser tab (or paste the new sign-in URL); you can close this one."))
		return
	}
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, page("Sign-in failed", "authkeeper could not sign in: "+err.Error()+". You can close this tab and try again."))
		return
	}
	fmt.Fprint(w, page("Signed in", "authkeeper is signed in. You can close this tab."))
}

// lingerAfterSignIn keeps a listener open briefly after the sign-in, so a reload or a second delivery
// of the callback gets a page saying it was already handled instead of a connection error. A sign-in
// that needs the port meanwhile takes it over at once (Client.reclaim).
const lingerAfterSignIn = 2 * time.Second

// finish ends a sign-in's listener: no callback is accepted any more (one that arrived after the
// sign-in stopped waiting is answered with late), and the listener lingers, registered under its port
// so that the next sign-in on that port can reclaim it.
func (c *Client) finish(lb *loopback, late error) {
	lb.stop(late)
	port := lb.port()
	c.mu.Lock()
	if old := c.lingering[port]; old != nil && old != lb {
		defer old.shutdown()
	}
	c.lingering[port] = lb
	c.mu.Unlock()
	time.AfterFunc(lingerAfterSignIn, func() { c.reclaim(port, lb) })
}

// reclaim shuts down the listener lingering on port (only that one, when only is set), if any.
func (c *Client) reclaim(port int, only *loopback) {
	c.mu.Lock()
	lb := c.lingering[port]
	if lb == nil || (only != nil && lb != only) {
		c.mu.Unlock()
		return
	}
	delete(c.lingering, port)
	c.mu.Unlock()
	lb.shutdown()
}

// close stops the listener, now or after lingering, giving a handler a moment to finish the page it is
// writing. A callback that arrived after the sign-in stopped waiting is answered with late.
func (l *loopback) close(late error, linger bool) {
	l.stop(late)
	if linger {
		time.AfterFunc(lingerAfterSignIn, l.shutdown)
		return
	}
	l.shutdown()
}

// stop answers a callback still queued with late and makes every later one a late one.
func (l *loopback) stop(late error) {
	select {
	case cb := <-l.got:
		cb.reply <- late
	default:
	}
	l.accepted.Store(true)
}

func (l *loopback) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.srv.Shutdown(ctx); err != nil {
		_ = l.srv.Close()
	}
}

func page(title, msg string) string {
	return "<!doctype html><html><head><meta charset=utf-8><title>" + html.EscapeString(title) +
		"</title></head><body><h1>" + html.EscapeString(title) + "</h1><p>" + html.EscapeString(msg) +
		"</p></body></html>"
}
