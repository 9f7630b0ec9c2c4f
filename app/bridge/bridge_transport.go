package bridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/proxy"
)

// proxyTransport sends the bridge's requests to the owner's proxy: it points each request at the
// proxy's current address, adds the access key as a header (never in the URL, so it cannot leak into
// an error message), and adds the negotiated MCP protocol version. Safe for concurrent use.
//
// When the owner goes away — it quit, crashed or was killed — a request is sent again, to the owner
// Resolve finds or becomes, only when the old owner cannot have forwarded it:
//   - the proxy could not be dialled at all; or
//   - with an owner that gives receipts (control.ProxyInfo.Receipts), the connection failed before the
//     proxy's receipt (`102 Processing`, see proxy.ReceiptHeader) arrived: the proxy writes it before
//     it forwards anything, so no receipt means not forwarded. The request goes out whole, in one
//     write, and the receipt travels while the server works, so it costs no round trip; or
//   - with an older owner, the request has a body and not one byte of it was sent. Such a request
//     carries `Expect: 100-continue`, so its body leaves only once the proxy has started reading it.
//
// This is what makes a kept-alive connection that the dead owner's kernel closed (a race no client can
// close) safe to retry, while a call the owner may already have forwarded is never replayed: the client
// gets an error for it instead of a possible second execution.
type proxyTransport struct {
	base    http.RoundTripper // for owners without receipts
	resolve func(ctx context.Context, renew bool) (control.ProxyInfo, error)
	conns   connPool // for owners with receipts

	mu      sync.Mutex
	info    *owner // nil until resolved
	version string // negotiated protocol version, "" before initialize
}

var _ http.RoundTripper = (*proxyTransport)(nil)

// owner is a resolved owner's proxy: its ProxyInfo, with the URL parsed once.
type owner struct {
	control.ProxyInfo
	scheme, host string
}

func (t *proxyTransport) setVersion(v string) {
	t.mu.Lock()
	t.version = v
	t.mu.Unlock()
}

func (t *proxyTransport) getVersion() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.version
}

// warm opens one connection to the owner's proxy ahead of the first request, when the owner gives
// receipts (the only connections this transport pools).
func (t *proxyTransport) warm(ctx context.Context) {
	info, err := t.current(ctx, nil)
	if err != nil || !info.Receipts || info.scheme != "http" {
		return
	}
	if pc, _, err := t.conns.get(ctx, info.host); err == nil {
		t.conns.put(pc)
	}
}

// current returns the proxy to use; with renew, a new one unless stale was already replaced.
func (t *proxyTransport) current(ctx context.Context, stale *owner) (*owner, error) {
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
	base, err := url.Parse(info.URL)
	if err != nil {
		return nil, fmt.Errorf("proxy URL: %w", err)
	}
	t.info = &owner{ProxyInfo: info, scheme: base.Scheme, host: base.Host}
	return t.info, nil
}

// RoundTrip implements http.RoundTripper.
func (t *proxyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	a := t.start(req).wait()
	return a.resp, a.err
}

// once sends req to the current owner once: no resend, no looking for another owner.
func (t *proxyTransport) once(req *http.Request) (*http.Response, error) {
	info, err := t.current(req.Context(), nil)
	if err != nil {
		return nil, err
	}
	a := t.send(req, info)
	return a.resp, a.err
}

// exchange is one request on its way: start writes it, wait reads the answer.
type exchange struct {
	t    *proxyTransport
	req  *http.Request
	info *owner
	a    attempt
	pe   *poolExchange // the first attempt, written and awaiting its answer
	done bool          // a holds the first attempt's outcome
}

// start begins sending req. With an owner that gives receipts the request has been written when start
// returns, so the caller may leave the wait for the answer to another goroutine without delaying the
// request itself.
func (t *proxyTransport) start(req *http.Request) *exchange {
	x := &exchange{t: t, req: req}
	info, err := t.current(req.Context(), nil)
	if err != nil {
		x.a, x.done = attempt{err: err, unseen: true}, true // no owner to send it to: nothing was sent
		return x
	}
	x.info = info
	if info.Receipts {
		r, err := t.prepare(req, info)
		if err != nil {
			x.a, x.done = attempt{err: err}, true
			return x
		}
		if info.scheme == "http" {
			x.pe, x.a = t.conns.begin(r)
			x.done = x.pe == nil
		}
	}
	return x
}

// wait returns the last attempt at the request, sending it again to a new owner where that is safe
// (see proxyTransport). A failed attempt's unseen says whether the request can still be sent again by
// whoever made it: when it is false, the owner may have forwarded it.
func (x *exchange) wait() attempt {
	t, req := x.t, x.req
	ctx := req.Context()
	a := x.a
	switch {
	case x.pe != nil:
		a = x.pe.finish()
	case !x.done:
		a = t.send(req, x.info)
	}
	if x.info == nil {
		return a
	}
	info := x.info
	// A body without GetBody was consumed by the first attempt: such a request is never sent twice.
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if a.err == nil || ctx.Err() != nil || !a.unseen || !replayable {
		return a
	}
	if a.reused {
		// A kept-alive connection failed unseen: the owner closed it (idle, or it went away). The
		// others to that address are no better; a new connection tells which it was.
		t.conns.drop()
		if a = t.send(req, info); a.err == nil || ctx.Err() != nil || !a.unseen {
			return a
		}
	}
	info, err := t.current(ctx, info)
	if err != nil {
		// Every attempt so far was unseen, and there is no owner to try again: still unseen.
		return attempt{err: fmt.Errorf("the authkeeper owner went away and none took over: %w", err), unseen: true}
	}
	return t.send(req, info)
}

// attempt is the outcome of one send.
type attempt struct {
	resp   *http.Response
	err    error
	unseen bool // the request failed and the owner cannot have forwarded it
	reused bool // it went on a kept-alive connection
}

// prepare returns req aimed at the proxy in info, carrying its key and the protocol version.
func (t *proxyTransport) prepare(req *http.Request, info *owner) (*http.Request, error) {
	var err error
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host, r.Host = info.scheme, info.host, ""
	r.Header.Set(proxy.ProxyKeyHeader, info.Key)
	t.mu.Lock()
	if v := t.version; v != "" && r.Header.Get("Mcp-Protocol-Version") == "" {
		r.Header.Set("Mcp-Protocol-Version", v)
	}
	t.mu.Unlock()
	if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
		if r.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// send sends one attempt of req to the proxy in info.
func (t *proxyTransport) send(req *http.Request, info *owner) attempt {
	r, err := t.prepare(req, info)
	if err != nil {
		return attempt{err: err}
	}
	if info.Receipts && info.scheme == "http" {
		return t.conns.roundTrip(r)
	}
	var sent *atomic.Bool
	if r.Body != nil && r.Body != http.NoBody && req.GetBody != nil {
		sent = new(atomic.Bool)
		// The transport may itself rewind through GetBody: every copy reports to the same flag.
		r.GetBody = func() (io.ReadCloser, error) {
			b, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			return &trackedBody{ReadCloser: b, sent: sent}, nil
		}
		r.Body = &trackedBody{ReadCloser: r.Body, sent: sent}
		r.Header.Set("Expect", "100-continue")
	}
	resp, err := t.base.RoundTrip(r)
	return attempt{resp: resp, err: err, unseen: err != nil && (isDial(err) || (sent != nil && !sent.Load()))}
}

// isDial reports whether err is a failure to connect: nothing was sent.
func isDial(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
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

// connPool is an HTTP/1.1 client for a proxy that gives receipts: each request is written by the
// goroutine that sends it and its answer read by the goroutine that waits for it, on a kept-alive
// connection of its own, with no goroutine of the transport in between (net/http's Transport hands
// every request to a writer and a reader goroutine: more wake-ups per exchange on the bridge's side).
// Safe for concurrent use.
type connPool struct {
	mu   sync.Mutex
	idle []*poolConn
}

// poolConn is one connection to the proxy.
type poolConn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time // when it was last returned to the pool
}

const (
	// maxIdleConns bounds the kept-alive connections: one client's calls in flight at once.
	maxIdleConns = 8
	// maxIdleTime retires connections the proxy may have closed as idle meanwhile.
	maxIdleTime = 30 * time.Second
	// max1xx bounds interim responses before the answer, as net/http does.
	max1xx = 5
)

// longAgo is a deadline in the past: it fails pending reads and writes at once.
var longAgo = time.Unix(1, 0)

// get returns a kept-alive connection to addr, or a new one.
func (p *connPool) get(ctx context.Context, addr string) (pc *poolConn, reused bool, err error) {
	p.mu.Lock()
	for len(p.idle) > 0 {
		pc = p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if pc.addr == addr && time.Since(pc.used) < maxIdleTime {
			p.mu.Unlock()
			return pc, true, nil
		}
		pc.c.Close()
	}
	p.mu.Unlock()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return &poolConn{addr: addr, c: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}, false, nil
}

// put keeps pc for the next request.
func (p *connPool) put(pc *poolConn) {
	pc.used = time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) >= maxIdleConns {
		pc.c.Close()
		return
	}
	p.idle = append(p.idle, pc)
}

// drop closes every kept-alive connection.
func (p *connPool) drop() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, pc := range idle {
		pc.c.Close()
	}
}

// roundTrip sends r and reads its answer. A failure before the proxy's receipt is unseen.
func (p *connPool) roundTrip(r *http.Request) attempt {
	pe, a := p.begin(r)
	if pe == nil {
		return a
	}
	return pe.finish()
}

// poolExchange is a request written on a connection, its answer not yet read.
type poolExchange struct {
	pool   *connPool
	r      *http.Request
	pc     *poolConn
	reused bool
	stop   func() bool
}

// begin writes r on a connection. On failure it returns nil and the attempt.
func (p *connPool) begin(r *http.Request) (*poolExchange, attempt) {
	ctx := r.Context()
	pc, reused, err := p.get(ctx, r.URL.Host)
	if err != nil {
		return nil, attempt{err: err, unseen: true}
	}
	// Reads and writes block on the socket: the request's context ends them through a deadline.
	x := &poolExchange{pool: p, r: r, pc: pc, reused: reused, stop: context.AfterFunc(ctx, func() { pc.c.SetDeadline(longAgo) })}
	r.Header.Set(proxy.ReceiptHeader, "1")
	r.Header.Del("Expect")
	err = r.Write(pc.bw)
	if err == nil {
		err = pc.bw.Flush()
	}
	if err != nil {
		return nil, x.fail(err, false)
	}
	return x, attempt{}
}

// fail ends the exchange after err; receipt says whether the proxy had acknowledged the request.
func (x *poolExchange) fail(err error, receipt bool) attempt {
	x.stop()
	x.pc.c.Close()
	if ctxErr := x.r.Context().Err(); ctxErr != nil {
		err = ctxErr
	}
	return attempt{err: err, unseen: !receipt, reused: x.reused}
}

// finish reads the answer, skipping interim responses and noting the receipt among them.
func (x *poolExchange) finish() attempt {
	receipt := false
	for n := 0; ; n++ {
		resp, err := http.ReadResponse(x.pc.br, x.r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the proxy closed the connection without answering
			}
			return x.fail(err, receipt)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return attempt{resp: x.pool.answer(resp, x.pc, x.stop), reused: x.reused}
		}
		if resp.StatusCode == http.StatusProcessing {
			receipt = true
		}
		if n == max1xx {
			return x.fail(errors.New("the proxy sent too many interim responses"), receipt)
		}
	}
}

// answer arranges for pc to go back to the pool once resp's body has been read to its end.
func (p *connPool) answer(resp *http.Response, pc *poolConn, stop func() bool) *http.Response {
	if resp.Body == http.NoBody {
		if stop() && !resp.Close {
			p.put(pc)
		} else {
			pc.c.Close()
		}
		return resp
	}
	resp.Body = &poolBody{rc: resp.Body, pool: p, pc: pc, stop: stop, keep: !resp.Close}
	return resp
}

// poolBody is a response body whose connection is reused once the body has been read whole.
type poolBody struct {
	rc   io.ReadCloser
	pool *connPool
	pc   *poolConn
	stop func() bool
	keep bool // the proxy keeps the connection open

	eof    atomic.Bool
	mu     sync.Mutex
	closed bool
}

func (b *poolBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

// Close returns the connection to the pool after a body read to its end; otherwise it closes the
// connection first, so that net/http's body does not wait to drain a stream that may never end.
func (b *poolBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.stop() && b.eof.Load() && b.keep {
		b.rc.Close()
		b.pool.put(b.pc)
		return nil
	}
	b.pc.c.Close()
	b.rc.Close()
	return nil
}
