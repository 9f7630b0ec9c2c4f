// Package bridge is the stdio bridge for MCP clients that only speak stdio: it relays messages to the
// owner's proxy, reopening an upstream session that ended without the client noticing, and never sends
// a call twice that the old owner may have forwarded.
package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The stdio bridge lets a client that only speaks MCP over stdio (Claude Desktop, most IDE plugins of
// old) use a remote server. It relays JSON-RPC messages, unchanged, between the official Go SDK's
// newline-delimited stdio connection and its Streamable HTTP client connection to the owner's proxy.
// The proxy injects the token, retries once on 401 and answers structured errors, so a bridge holds no
// credential and every bridge on the machine shares the one owner's refreshes.

// BridgeConfig configures a Bridge. Every field without a default is required.
type BridgeConfig struct {
	// Server is the name of the configured server to reach.
	Server string
	// In and Out are the client's side of the connection: newline-delimited JSON-RPC, normally stdin
	// and stdout. Nothing but MCP messages is ever written to Out.
	In  io.ReadCloser
	Out io.WriteCloser
	// Resolve returns where the owner's proxy listens and its access key. renew is true after the last
	// answer could not be dialled (the owner went away): Resolve must then find or become the new owner.
	Resolve func(ctx context.Context, renew bool) (control.ProxyInfo, error)
	// Log receives one line per notable event (a session re-opened, a message that could not be
	// relayed); never message bodies, so never anything secret. Default: discarded.
	Log io.Writer
}

// Bridge relays one stdio client's MCP session to a server through the proxy. Run it once.
type Bridge struct {
	cfg  BridgeConfig
	rt   *proxyTransport
	down mcp.Connection
	log  func(format string, args ...any)

	mu      sync.Mutex
	up      mcp.Connection // the current upstream connection
	gen     int            // bumped on every re-opened session
	broken  bool           // up failed for good; the next message re-opens a session
	init    *jsonrpc.Request
	inited  bool                   // the client sent notifications/initialized
	pending map[jsonrpc.ID]bool    // calls relayed upstream: true once written, false while writing
	reinit  chan *jsonrpc.Response // the answer to a replayed initialize

	reopenMu sync.Mutex // one session re-open at a time
}

// NewBridge validates cfg and returns a bridge that is not yet running.
func NewBridge(cfg BridgeConfig) (*Bridge, error) {
	switch {
	case cfg.Server == "":
		return nil, errors.New("bridge: no server name")
	case cfg.In == nil || cfg.Out == nil:
		return nil, errors.New("bridge: In and Out are required")
	case cfg.Resolve == nil:
		return nil, errors.New("bridge: Resolve is required")
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	b := &Bridge{cfg: cfg, pending: map[jsonrpc.ID]bool{}, reinit: make(chan *jsonrpc.Response, 1)}
	b.log = func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "authkeeper bridge %s: "+format+"\n", append([]any{cfg.Server}, args...)...)
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	// The proxy starts reading a body at once (see proxyTransport), so this only bounds a stalled owner.
	base.ExpectContinueTimeout = 5 * time.Second
	b.rt = &proxyTransport{base: base, resolve: cfg.Resolve}
	return b, nil
}

// Run relays messages until the client closes its input (nil) or ctx ends; it then ends the upstream
// session.
func (b *Bridge) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	down, err := (&mcp.IOTransport{Reader: b.cfg.In, Writer: b.cfg.Out}).Connect(ctx)
	if err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	b.down = down
	defer down.Close()
	up, err := b.dial(ctx)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.up = up
	b.mu.Unlock()
	go b.relayUp(ctx, up, 0)
	var wg sync.WaitGroup
	defer func() {
		b.mu.Lock()
		up := b.up
		b.mu.Unlock()
		up.Close() // ends the server's session (DELETE)
		cancel()
		wg.Wait()
	}()
	for {
		msg, err := down.Read(ctx)
		switch {
		case errors.Is(err, io.EOF) || ctx.Err() != nil:
			return nil
		case err != nil:
			return fmt.Errorf("bridge: read from the client: %w", err)
		}
		req, isReq := msg.(*jsonrpc.Request)
		if isReq {
			b.remember(req)
		}
		if isReq && req.IsCall() {
			wg.Go(func() { b.forward(ctx, req) }) // a slow tool call must not hold up the others
			continue
		}
		b.forward(ctx, msg) // notifications and responses keep their order
	}
}

// dial opens a Streamable HTTP connection to the server's route on the proxy. The endpoint's host is a
// placeholder the proxy transport replaces with the owner's current address, so that neither the
// address nor the access key appears in the SDK's error messages, and so that a session survives a
// change of owner (the server never sees the proxy change).
func (b *Bridge) dial(ctx context.Context) (mcp.Connection, error) {
	t := &mcp.StreamableClientTransport{
		Endpoint:   "http://authkeeper/mcp/" + url.PathEscape(b.cfg.Server),
		HTTPClient: &http.Client{Transport: b.rt},
		// The optional GET stream needs the SDK's client session to start it (an unexported hook), which a
		// relay does not have; responses, and the requests and notifications sent while a call runs, all
		// arrive on the POST streams.
		DisableStandaloneSSE: true,
	}
	conn, err := t.Connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("bridge: connect to %s: %w", b.cfg.Server, err)
	}
	return conn, nil
}

// remember keeps what a new session needs: the client's initialize request and whether it finished
// the handshake.
func (b *Bridge) remember(req *jsonrpc.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch req.Method {
	case "initialize":
		b.init = req
	case "notifications/initialized":
		b.inited = true
	}
}

// relayUp copies the server's messages to the client until conn fails or is replaced.
func (b *Bridge) relayUp(ctx context.Context, conn mcp.Connection, gen int) {
	for {
		msg, err := conn.Read(ctx)
		if err != nil {
			b.upstreamEnded(ctx, gen, err)
			return
		}
		if resp, ok := msg.(*jsonrpc.Response); ok {
			if isReinitID(resp.ID) {
				select {
				case b.reinit <- resp:
				default:
				}
				continue
			}
			b.answered(resp)
		}
		if err := b.down.Write(ctx, msg); err != nil {
			if ctx.Err() == nil {
				b.log("cannot write to the client: %v", err)
			}
			return
		}
	}
}

// answered records the answer to a relayed call and, for initialize, the negotiated protocol version
// the proxy transport must send on every later request.
func (b *Bridge) answered(resp *jsonrpc.Response) {
	b.mu.Lock()
	delete(b.pending, resp.ID)
	isInit := b.init != nil && b.init.ID == resp.ID
	b.mu.Unlock()
	if isInit && resp.Error == nil {
		var res struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		if json.Unmarshal(resp.Result, &res) == nil {
			b.rt.setVersion(res.ProtocolVersion)
		}
	}
}
