// Package bridge is the stdio bridge for MCP clients that only speak stdio: it relays messages to the
// owner's proxy, reopening an upstream session that ended without the client noticing, and never sends
// a call twice that the old owner may have forwarded.
package bridge

import (
	"bufio"
	"bytes"
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
)

// The stdio bridge lets a client that only speaks MCP over stdio (Claude Desktop, most IDE plugins of
// old) use a remote server. It relays JSON-RPC messages, byte for byte, between the client's
// newline-delimited stdio and Streamable HTTP requests to the owner's proxy. The proxy injects the
// token, retries once on 401 and answers structured errors, so a bridge holds no credential and every
// bridge on the machine shares the one owner's refreshes.
//
// Every agent session spawns its own bridge, so its latency is what stdio users feel. It therefore
// decodes only each message's envelope (id, method) and never re-encodes a message: a line from the
// client is the body of one POST, and each message of the answer — a JSON body or one SSE event — is
// one line to the client. A call is written to the proxy by the goroutine that read it from stdin, and
// its answer is read and written to stdout by one goroutine of its own (see proxyTransport), with no
// goroutine hand-off in between. Until issue 16 the bridge used the Go SDK's IOTransport and
// StreamableClientTransport: docs/bench-bridge.md measures what that cost.

// BridgeConfig configures a Bridge. Every field without a default is required.
type BridgeConfig struct {
	// Server is the name of the configured server to reach.
	Server string
	// In and Out are the client's side of the connection: newline-delimited JSON-RPC, normally stdin
	// and stdout. Nothing but MCP messages is ever written to Out, one per line.
	In  io.ReadCloser
	Out io.WriteCloser
	// Resolve returns where the owner's proxy listens and its access key. renew is true after the last
	// answer could not be dialled (the owner went away): Resolve must then find or become the new owner.
	Resolve func(ctx context.Context, renew bool) (control.ProxyInfo, error)
	// Log receives one line per notable event (a session re-opened, a message that could not be
	// relayed); never message bodies, so never anything secret. Default: discarded.
	Log io.Writer
}

// maxLine bounds one message from the client, as the Go SDK's stdio transport does
// (mcp.DefaultMaxLineLength); the proxy refuses larger bodies anyway.
const maxLine = 16 << 20

// Bridge relays one stdio client's MCP session to a server through the proxy. Run it once.
type Bridge struct {
	cfg         BridgeConfig
	rt          *proxyTransport
	log         func(format string, args ...any)
	endpoint    string   // the server's route on the proxy; the host is replaced by proxyTransport
	endpointURL *url.URL // endpoint, parsed; shared, never modified

	outMu  sync.Mutex
	outErr error // the first failed write to the client

	mu      sync.Mutex
	session string // the upstream Mcp-Session-Id, "" before initialize
	gen     int    // bumped on every re-opened session
	init    []byte // the client's initialize request, replayed to open a new session
	initID  string // its id (idKey)
	inited  bool   // the client sent notifications/initialized

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
	b := &Bridge{cfg: cfg, endpoint: "http://authkeeper/mcp/" + url.PathEscape(cfg.Server)}
	u, err := url.Parse(b.endpoint)
	if err != nil {
		return nil, fmt.Errorf("bridge: server name %q: %w", cfg.Server, err)
	}
	b.endpointURL = u
	b.log = func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "authkeeper bridge %s: "+format+"\n", append([]any{cfg.Server}, args...)...)
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	// Only for an owner without receipts: its proxy starts reading a body at once, so this only bounds
	// a stalled owner.
	base.ExpectContinueTimeout = 5 * time.Second
	b.rt = &proxyTransport{base: base, resolve: cfg.Resolve}
	return b, nil
}

// Run relays messages until the client closes its input (nil) or ctx ends; it then ends the upstream
// session.
func (b *Bridge) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The loop runs on a goroutine of its own: the caller may be a main goroutine locked to its thread
	// (fyne's driver locks it at init), and every wake-up of a locked goroutine is a thread switch.
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	go func() { errc <- b.readLoop(ctx, &wg) }()
	// Warm one connection to the proxy while the client starts: its initialize need not wait for the
	// dial.
	go b.rt.warm(ctx)
	defer b.rt.conns.drop()
	select {
	case err := <-errc:
		// The client closed its input (or it failed): the calls it sent still get their answers
		// (`echo '…' | authkeeper bridge NAME` works), then the session ends. A client that will not
		// wait ends the bridge through ctx (SIGTERM).
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
		}
		b.endSession()
		return err
	case <-ctx.Done():
		// The read loop may be blocked on stdin, which ctx cannot interrupt: leave it; the calls in
		// flight end with ctx.
		b.endSession()
		return nil
	}
}

// readLoop reads the client's messages and relays each. Calls are answered concurrently, so a slow
// tool call does not hold up the others; notifications and responses keep their order.
func (b *Bridge) readLoop(ctx context.Context, wg *sync.WaitGroup) error {
	in := bufio.NewReaderSize(b.cfg.In, 64<<10)
	for {
		line, err := readLine(in)
		switch {
		case errors.Is(err, errLineTooLong):
			b.log("a message from the client exceeds %d MiB; it was dropped", maxLine>>20)
			b.replyParse(ctx, "the message exceeds the bridge's size limit")
			continue
		case err != nil && (errors.Is(err, io.EOF) || ctx.Err() != nil):
			return nil
		case err != nil:
			return fmt.Errorf("bridge: read from the client: %w", err)
		}
		if len(line) == 0 {
			continue
		}
		msg, err := parseMessage(line)
		if err != nil {
			b.log("a message from the client is not JSON-RPC (%v); it was answered with a parse error", err)
			b.replyParse(ctx, err.Error())
			continue
		}
		b.remember(msg)
		if len(msg.calls) == 0 {
			b.send(ctx, msg, nil) // notifications and responses keep their order
			continue
		}
		// The request is written before the next line is read; its answer is awaited concurrently.
		x := b.start(ctx, msg)
		wg.Go(func() { b.send(ctx, msg, x) })
	}
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its line ending; a line over maxLine is skipped whole and
// reported as errLineTooLong.
func readLine(r *bufio.Reader) ([]byte, error) {
	var long []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if err == nil && long == nil {
			// A copy: the message outlives the reader's buffer (its body may be sent again, and a
			// call's answer is awaited while the next lines are read).
			return bytes.Clone(bytes.TrimRight(chunk, "\r\n")), nil
		}
		if len(long) <= maxLine {
			long = append(long, chunk...)
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil && !(errors.Is(err, io.EOF) && len(long) > 0):
			return nil, err
		}
		if len(long) > maxLine {
			return nil, errLineTooLong
		}
		return bytes.TrimRight(long, "\r\n"), nil // the last line may lack its newline
	}
}

// remember keeps what a new session needs: the client's initialize request and whether it finished
// the handshake.
func (b *Bridge) remember(msg *message) {
	if msg.method != "initialize" && msg.method != "notifications/initialized" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if msg.method == "initialize" {
		b.init, b.initID = bytes.Clone(msg.raw), msg.calls[0]
		b.session = "" // a new handshake opens a new session
	} else {
		b.inited = true
	}
}

// emit writes one message to the client as one line (a single write, so concurrent answers never
// interleave).
func (b *Bridge) emit(msg []byte) {
	line := make([]byte, 0, len(msg)+1)
	line = append(append(line, msg...), '\n')
	b.outMu.Lock()
	defer b.outMu.Unlock()
	if b.outErr != nil {
		return
	}
	if _, err := b.cfg.Out.Write(line); err != nil {
		b.outErr = err
		b.log("cannot write to the client: %v", err)
	}
}

// endSession ends the upstream session (DELETE), as the client's own transport would on close.
func (b *Bridge) endSession() {
	b.mu.Lock()
	session := b.session
	b.mu.Unlock()
	if session == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, b.endpoint, nil)
	if err != nil {
		return
	}
	req.Header.Set("Mcp-Session-Id", session)
	// Sent once, to the owner known now: ending the bridge must not look for (or become) a new owner.
	if resp, err := b.rt.once(req); err == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
}

// message is one line from the client or one message from the server, with its envelope decoded.
type message struct {
	raw    []byte
	method string   // "" for a response
	calls  []string // idKeys of the requests that expect an answer (several in a batch)
	answer string   // idKey of the request this answers, "" if it is not a response
	batch  bool
	name   string // params.name (or params.uri) of a tools/call, prompts/get or resources/read
	// version is the protocol version a request of 2026-07-28 or later names in its own
	// params._meta (SEP-2575: that protocol has no initialize; each request says its version, and
	// over HTTP its Mcp-Protocol-Version header must say the same). "" for earlier protocols.
	version string
}

// envelope is what the bridge reads of a JSON-RPC message. Params, result and error are decoded only
// as far as the bridge needs them (their presence, a name, a protocol version): the rest of the
// message is scanned, never copied.
type envelope struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params lenient         `json:"params"`
	Result presence        `json:"result"`
	Error  presence        `json:"error"`
}

// presence records that a field is there, whatever its value (null included), without copying it.
type presence bool

func (p *presence) UnmarshalJSON([]byte) error {
	*p = true
	return nil
}

// lenient is the part of a request's params the bridge reads: the name of a tool or prompt, or a
// resource's URI. Params of any other shape (an array, say) are the server's business, not an error.
type lenient struct {
	Name    string
	URI     string
	Version string // params._meta's protocol version (see message.version)
}

func (l *lenient) UnmarshalJSON(b []byte) error {
	var p struct {
		Name lenientString `json:"name"`
		URI  lenientString `json:"uri"`
		Meta lenientMeta   `json:"_meta"`
	}
	if json.Unmarshal(b, &p) == nil {
		l.Name, l.URI, l.Version = string(p.Name), string(p.URI), p.Meta.version
	}
	return nil
}

// lenientMeta is the part of params._meta the bridge reads: the protocol version a request of
// 2026-07-28 or later names (the Go SDK's MetaKeyProtocolVersion). A _meta of another shape leaves it
// empty.
type lenientMeta struct{ version string }

func (m *lenientMeta) UnmarshalJSON(b []byte) error {
	var v struct {
		ProtocolVersion lenientString `json:"io.modelcontextprotocol/protocolVersion"`
	}
	if json.Unmarshal(b, &v) == nil {
		m.version = string(v.ProtocolVersion)
	}
	return nil
}

// lenientString is a string field that a value of another type leaves empty instead of failing the
// whole message.
type lenientString string

func (s *lenientString) UnmarshalJSON(b []byte) error {
	var v string
	if json.Unmarshal(b, &v) == nil {
		*s = lenientString(v)
	}
	return nil
}

// parseMessage decodes raw's envelope; raw is kept as it is.
func parseMessage(raw []byte) (*message, error) {
	msg := &message{raw: raw}
	trimmed := bytes.TrimLeft(raw, " \t")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return nil, err
		}
		if len(elems) == 0 {
			return nil, errors.New("an empty batch")
		}
		msg.batch = true
		for _, e := range elems {
			var env envelope
			if err := json.Unmarshal(e, &env); err != nil {
				return nil, err
			}
			if env.Method != "" && !isNull(env.ID) {
				msg.calls = append(msg.calls, idKey(env.ID))
			}
		}
		return msg, nil
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, err
	}
	msg.method, msg.version = env.Method, env.Params.Version
	switch {
	case env.Method != "" && !isNull(env.ID):
		msg.calls = []string{idKey(env.ID)}
		switch env.Method {
		case "tools/call", "prompts/get":
			msg.name = env.Params.Name
		case "resources/read":
			msg.name = env.Params.URI
		}
	case env.Method == "" && (bool(env.Result) || bool(env.Error)):
		msg.answer = idKey(env.ID)
	case env.Method == "":
		return nil, errors.New("neither a request nor a response")
	}
	return msg, nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// idKey makes a JSON-RPC id comparable however it was spelled: 7, 7.0 and 7e0 are the same id (the
// server may re-encode it), "7" is not.
func idKey(raw json.RawMessage) string {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return "s" + s
		}
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		if i, err := n.Int64(); err == nil {
			return fmt.Sprint("n", i)
		}
		if f, err := n.Float64(); err == nil && f == float64(int64(f)) {
			return fmt.Sprint("n", int64(f))
		}
	}
	return "r" + string(raw)
}

// rawID turns an idKey back into JSON.
func rawID(key string) json.RawMessage {
	switch {
	case key == "":
		return json.RawMessage("null")
	case key[0] == 's':
		b, _ := json.Marshal(key[1:])
		return b
	default:
		return json.RawMessage(key[1:])
	}
}
