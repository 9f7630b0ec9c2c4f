package bridge

import (
	"context"
	"errors"
	"fmt"
	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/proxy"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
)

// proxyTransport sends the bridge's requests to the owner's proxy: it points each request at the
// proxy's current address, adds the access key as a header (never in the URL, so it cannot leak into
// an error message), and adds the negotiated MCP protocol version, which the SDK's client connection
// sets only for a client session of its own. Safe for concurrent use.
//
// When the owner goes away — it quit, crashed or was killed — a request is sent again, to the owner
// Resolve finds or becomes, only when the old owner cannot have seen it:
//   - the proxy could not be dialled at all; or
//   - the request has a body and not one byte of it was sent. Every such request carries
//     `Expect: 100-continue`, so its body leaves only once the proxy has started reading it. This is
//     what makes a kept-alive connection that the dead owner's kernel closed (a race no client can
//     close) safe to retry, while a call the owner may already have forwarded is never replayed: the
//     client gets an error for it instead of a possible second execution.
type proxyTransport struct {
	base    http.RoundTripper
	resolve func(ctx context.Context, renew bool) (control.ProxyInfo, error)

	mu      sync.Mutex
	info    *control.ProxyInfo // nil until resolved
	version string             // negotiated protocol version, "" before initialize
}

var _ http.RoundTripper = (*proxyTransport)(nil)

func (t *proxyTransport) setVersion(v string) {
	t.mu.Lock()
	t.version = v
	t.mu.Unlock()
}

// current returns the proxy to use; with renew, a new one unless stale was already replaced.
func (t *proxyTransport) current(ctx context.Context, stale *control.ProxyInfo) (*control.ProxyInfo, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.info != nil && t.info != stale {
		return t.info, nil
	}
	info, err := t.resolve(ctx, stale != nil)
	if err != nil {
		return nil, err
	}
	if info.URL == "" {
		return nil, errors.New("the owner serves no proxy")
	}
	t.info = &info
	return t.info, nil
}

// RoundTrip implements http.RoundTripper.
func (t *proxyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	info, err := t.current(req.Context(), nil)
	if err != nil {
		return nil, err
	}
	resp, sent, err := t.send(req, info)
	if err == nil || req.Context().Err() != nil || !unseen(err, sent) || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
		return resp, err // a body without GetBody was consumed by the first attempt
	}
	if info, err = t.current(req.Context(), info); err != nil {
		return nil, fmt.Errorf("the authkeeper owner went away and none took over: %w", err)
	}
	resp, _, err = t.send(req, info)
	return resp, err
}

// unseen reports whether a request that failed with err cannot have reached the proxy's handler: the
// dial failed, or a request with a body (sent is non-nil) failed before any of the body was sent.
func unseen(err error, sent *atomic.Bool) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return sent != nil && !sent.Load()
}

// send sends one attempt of req to the proxy in info. sent, non-nil for a request with a body, turns
// true once the transport has read any of the body.
func (t *proxyTransport) send(req *http.Request, info *control.ProxyInfo) (*http.Response, *atomic.Bool, error) {
	base, err := url.Parse(info.URL)
	if err != nil {
		return nil, nil, fmt.Errorf("proxy URL: %w", err)
	}
	r := req.Clone(req.Context())
	var sent *atomic.Bool
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			// The body cannot be sent twice, so it is never resent: no need to track it.
			r.Body = req.Body
		} else {
			sent = new(atomic.Bool)
			// The transport may itself rewind through GetBody: every copy reports to the same flag.
			r.GetBody = func() (io.ReadCloser, error) {
				b, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				return &trackedBody{ReadCloser: b, sent: sent}, nil
			}
			if r.Body, err = r.GetBody(); err != nil {
				return nil, nil, err
			}
			r.Header.Set("Expect", "100-continue")
		}
	}
	r.URL.Scheme, r.URL.Host, r.Host = base.Scheme, base.Host, ""
	r.Header.Set(proxy.ProxyKeyHeader, info.Key)
	t.mu.Lock()
	if v := t.version; v != "" && r.Header.Get("Mcp-Protocol-Version") == "" {
		r.Header.Set("Mcp-Protocol-Version", v)
	}
	t.mu.Unlock()
	resp, err := t.base.RoundTrip(r)
	return resp, sent, err
}

// trackedBody records that the transport started to send a request body.
type trackedBody struct {
	io.ReadCloser
	sent *atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	b.sent.Store(true)
	return b.ReadCloser.Read(p)
}
