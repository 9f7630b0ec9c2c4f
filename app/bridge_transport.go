package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
)

// proxyTransport sends the bridge's requests to the owner's proxy: it points each request at the
// proxy's current address, adds the access key as a header (never in the URL, so it cannot leak into
// an error message), and adds the negotiated MCP protocol version, which the SDK's client connection
// sets only for a client session of its own. When the proxy cannot be dialled — its owner went away —
// it asks Resolve for the new owner once and retries. Safe for concurrent use.
type proxyTransport struct {
	base    http.RoundTripper
	resolve func(ctx context.Context, renew bool) (ProxyInfo, error)

	mu      sync.Mutex
	info    *ProxyInfo // nil until resolved
	version string     // negotiated protocol version, "" before initialize
}

var _ http.RoundTripper = (*proxyTransport)(nil)

func (t *proxyTransport) setVersion(v string) {
	t.mu.Lock()
	t.version = v
	t.mu.Unlock()
}

// current returns the proxy to use; with renew, a new one unless stale was already replaced.
func (t *proxyTransport) current(ctx context.Context, stale *ProxyInfo) (*ProxyInfo, error) {
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
	resp, err := t.send(req, info)
	var op *net.OpError
	if err == nil || !errors.As(err, &op) || op.Op != "dial" {
		return resp, err
	}
	if req.Body != nil && req.GetBody == nil {
		return nil, err
	}
	if info, err = t.current(req.Context(), info); err != nil {
		return nil, fmt.Errorf("the authkeeper owner went away and none took over: %w", err)
	}
	return t.send(req, info)
}

func (t *proxyTransport) send(req *http.Request, info *ProxyInfo) (*http.Response, error) {
	base, err := url.Parse(info.URL)
	if err != nil {
		return nil, fmt.Errorf("proxy URL: %w", err)
	}
	r := req.Clone(req.Context())
	if req.GetBody != nil {
		if r.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	r.URL.Scheme, r.URL.Host, r.Host = base.Scheme, base.Host, ""
	r.Header.Set(ProxyKeyHeader, info.Key)
	t.mu.Lock()
	if v := t.version; v != "" && r.Header.Get("Mcp-Protocol-Version") == "" {
		r.Header.Set("Mcp-Protocol-Version", v)
	}
	t.mu.Unlock()
	return t.base.RoundTrip(r)
}
