// Package proxy is the loopback MCP proxy agents call: one route per configured server, a fresh token
// on every request, one refresh and (when the request is safe to send twice) one replay after a
// rejected token, and JSON-RPC errors that say what to do when no token can be had (see
// docs/proxy.md). It reaches the engine only through the Engine interface it declares.
package proxy

import (
	"crypto/subtle"
	"fmt"
	"github.com/authkeeper/authkeeper/app/engine"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The proxy is the agents' side of the engine: one MCP route per configured server, reached as
// http://127.0.0.1:PORT/<key>/mcp/<name> (or /mcp/<name> with the key in a header). Every request is
// forwarded to the server's real URL with a fresh token from its keeper; see proxy_forward.go for the
// forwarding and the retry, proxy_rejection.go for what counts as a rejected token and what is done
// about it, proxy_errors.go for what a caller sees when no token can be had.
//
// Loopback security (MCP "Security Best Practices", local servers): the listener is bound to a loopback
// IP (engine.New refuses anything else); a Host whose name is not loopback is refused (DNS rebinding;
// its port may differ, for an `ssh -R` forward); a request with a non-loopback Origin is refused (web
// pages); and every caller must present the per-install access key, compared in constant time, so
// that other local users and pages cannot spend the user's tokens. The key is accepted, in this order,
// as the first path segment, as the X-Authkeeper-Key header, or as `Authorization: Bearer <key>` for
// clients that can only set a bearer token. A client's Authorization header is never forwarded.

// ProxyKeyHeader is the request header that may carry the proxy's access key.
const ProxyKeyHeader = "X-Authkeeper-Key"

// ReceiptHeader, on a request, asks the proxy for a receipt: an interim `102 Processing` response
// written once the request has been read whole and before it is sent to the server. It is written
// (flushed to the socket) before the forward starts, so a caller whose connection fails before a
// receipt arrived knows that this proxy never forwarded the request and may send it again elsewhere;
// after a receipt it must not. The stdio bridge relies on it (see control.ProxyInfo.Receipts) instead of
// `Expect: 100-continue`, which costs a round trip before every body. Never forwarded.
const ReceiptHeader = "X-Authkeeper-Receipt"

// maxRequestBody bounds a request body: bodies are buffered so that a request rejected for its token
// can be replayed once. MCP messages are far smaller; a larger one gets 413.
const maxRequestBody = 16 << 20

// proxy serves the MCP routes. Safe for concurrent use.
type proxy struct {
	e   Engine
	key []byte // the access key

	// transport is shared by every server: keep-alive connections per upstream, no proxy from the
	// environment (tokens must not transit a proxy the user did not configure for authkeeper), and it
	// never follows redirects (RoundTrip does not), so no token is ever sent to an origin it was not
	// issued for.
	transport *http.Transport
	targets   sync.Map // server URL string → *url.URL, parsed once
	bodies    sync.Pool
	copyBufs  sync.Pool

	// weakRefreshed maps a server's name to its *weakMemory: the token its keeper handed out after a
	// refresh forced by weak evidence, whose own weak rejection is not acted on (see weakRefresh).
	weakRefreshed sync.Map
}

// FrontEnd opens the proxy's loopback listener on the engine's proxy address; the engine serves it
// until Close (an engine.FrontEnd, see engine.Config.Proxy).
func FrontEnd(e *engine.Engine) (net.Listener, http.Handler, error) {
	l, err := net.Listen("tcp", e.ProxyAddr())
	if err != nil {
		return nil, nil, fmt.Errorf("proxy: listen on %s: %w (set another port with --proxy-addr)", e.ProxyAddr(), err)
	}
	return l, New(Of(e)), nil
}

// New returns the proxy's handler over e.
func New(e Engine) http.Handler { return newProxy(e) }

func newProxy(e Engine) *proxy {
	return &proxy{
		e:   e,
		key: []byte(e.ProxyKey()),
		transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   128,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: 0,
			// Tool calls may run for minutes and GET streams for hours: no response timeout here; the
			// caller's context (its connection) bounds every request.
		},
		bodies:   sync.Pool{New: func() any { return new(bodyBuf) }},
		copyBufs: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }},
	}
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.hostAllowed(r) {
		p.refuse(w, "the Host header must name localhost or a loopback IP (DNS rebinding protection)")
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !loopbackOrigin(o) {
		p.refuse(w, "requests from web pages are refused: the Origin is not loopback")
		return
	}
	key, name, ok := splitRoute(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if key == "" {
		key = r.Header.Get(ProxyKeyHeader)
		if key == "" {
			if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
				key = a[7:]
			}
		}
	}
	if subtle.ConstantTimeCompare([]byte(key), p.key) != 1 {
		p.refuse(w, "a missing or wrong access key: use the proxy URL authkeeper shows for this server (it carries the key), or send the key in the "+ProxyKeyHeader+" header")
		return
	}
	p.forward(w, r, name)
}

// splitRoute parses /<key>/mcp/<name> and /mcp/<name>; key is "" in the second form.
func splitRoute(path string) (key, name string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/")
	if !ok {
		return "", "", false
	}
	if !strings.HasPrefix(rest, "mcp/") {
		i := strings.IndexByte(rest, '/')
		if i <= 0 {
			return "", "", false
		}
		key, rest = rest[:i], rest[i+1:]
	}
	name, ok = strings.CutPrefix(rest, "mcp/")
	if !ok || name == "" || strings.IndexByte(name, '/') >= 0 {
		return "", "", false
	}
	return key, name, true
}

// hostAllowed accepts a Host whose name is localhost or a loopback IP, on any port or none. A
// DNS-rebinding page reaches the proxy with its own host name in Host and is refused here: the name is
// the defence. The port is not checked, because a forward legitimately changes it — `ssh -R
// 8123:127.0.0.1:<proxy port>` on a remote box delivers Host 127.0.0.1:8123 to a listener on another
// port — while a browser always sends the port it connected to, so a mismatched port can only come
// from such a forwarder and is no sign of a web page (pages are the Origin check's job).
func (p *proxy) hostAllowed(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1] // [::1] without a port
	}
	return loopbackName(host)
}

func loopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// loopbackOrigin accepts an Origin whose host is loopback (a local tool's page, a desktop client).
// "null" (sandboxed or file pages) is refused.
func loopbackOrigin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return loopbackName(u.Hostname())
}

// refuse answers 403 to a caller the proxy does not trust. The body is a JSON-RPC error without an id:
// the request body of an untrusted caller is never read.
func (p *proxy) refuse(w http.ResponseWriter, why string) {
	writeRPCError(w, http.StatusForbidden, nil, rpcError{Code: CodeProxyError, Message: "authkeeper: " + why,
		Data: ErrorData{Type: "access_denied", Action: why}})
}
