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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authkeeper/authkeeper/app/proxy"
)

// reinitPrefix marks the id of an initialize the bridge replays to open a new session; its answer is
// the bridge's, not the client's.
const reinitPrefix = "authkeeper-reinit-"

// minStandardHeaders is the first protocol version whose servers require the Mcp-Method and Mcp-Name
// request headers (the Go SDK's minVersionForStandardHeaders).
const minStandardHeaders = "2026-07-28"

var errSessionEnded = errors.New("the server's session ended")

// pending is a message on its way to the proxy.
type pending struct {
	x       *exchange
	gen     int  // the session generation it was sent on
	session bool // it carried a session id
}

// start writes msg to the proxy on the current session.
func (b *Bridge) start(ctx context.Context, msg *message) *pending {
	req := b.post(ctx, msg.raw)
	h := req.Header
	h["Content-Type"] = []string{"application/json"}
	h["Accept"] = []string{"application/json, text/event-stream"}
	b.mu.Lock()
	session, gen := b.session, b.gen
	b.mu.Unlock()
	if session != "" && msg.method != "initialize" {
		h["Mcp-Session-Id"] = []string{session}
	}
	if !msg.batch {
		b.standardHeaders(h, msg.method, msg.name)
	}
	return &pending{x: b.rt.start(req), gen: gen, session: h.Get("Mcp-Session-Id") != ""}
}

// standardHeaders sets the Mcp-Method and Mcp-Name headers that servers of protocol 2026-07-28 and
// later require on a request (none on a response).
func (b *Bridge) standardHeaders(h http.Header, method, name string) {
	if method == "" || b.rt.getVersion() < minStandardHeaders {
		return
	}
	h.Set("Mcp-Method", method)
	if name != "" {
		h.Set("Mcp-Name", name)
	}
}

// post returns a POST of body to the server's route: http.NewRequestWithContext without parsing the
// fixed endpoint again for every message.
func (b *Bridge) post(ctx context.Context, body []byte) *http.Request {
	req := &http.Request{Method: http.MethodPost, URL: b.endpointURL, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: make(http.Header, 8), Host: b.endpointURL.Host, ContentLength: int64(len(body)),
		Body:    io.NopCloser(bytes.NewReader(body)),
		GetBody: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }}
	return req.WithContext(ctx)
}

// send waits for the answer to msg (started as p, or started now when p is nil) and relays it. When
// the session is gone (the server answered 404) it opens a new one, replaying the client's initialize,
// and sends msg once more: a request the server answered 404 was never processed, so sending it again
// is safe. A call that cannot be relayed is answered with an error, so the client never waits for an
// answer that cannot come.
func (b *Bridge) send(ctx context.Context, msg *message, p *pending) {
	for attempt := 0; ; attempt++ {
		if p == nil {
			p = b.start(ctx, msg)
		}
		resp, err := p.x.wait()
		if err != nil {
			b.failed(ctx, msg, err)
			return
		}
		if resp.StatusCode == http.StatusNotFound && p.session {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			// An answer to this very message (the proxy's not_configured, a server's method not found)
			// is relayed; any other 404 on a session — the Go SDK's plain text, the TypeScript and
			// Python SDKs' JSON-RPC errors with id null — means the session is gone.
			if rpc := errorAnswer(body); rpc != nil && answersOne(rpc.ID, msg.calls) {
				b.relayError(ctx, msg, rpc, resp.StatusCode)
				return
			}
			if attempt > 0 || msg.method == "initialize" {
				b.failed(ctx, msg, errSessionEnded)
				return
			}
			if err := b.reopen(ctx, p.gen); err != nil {
				b.failed(ctx, msg, fmt.Errorf("the server's session ended and a new one could not be opened: %w", err))
				return
			}
			p = nil
			continue
		}
		b.relay(ctx, msg, p, resp)
		return
	}
}

// relay passes the answer to msg on to the client.
func (b *Bridge) relay(ctx context.Context, msg *message, p *pending, resp *http.Response) {
	defer resp.Body.Close()
	if msg.method == "initialize" && resp.StatusCode == http.StatusOK {
		// Before the answer reaches the client, whose next message must carry the session.
		if s := resp.Header.Get("Mcp-Session-Id"); s != "" {
			b.mu.Lock()
			if b.gen == p.gen {
				b.session = s
			}
			b.mu.Unlock()
		}
	}
	status := resp.StatusCode
	if status < 200 || status > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if rpc := errorAnswer(body); rpc != nil {
			b.relayError(ctx, msg, rpc, status)
			return
		}
		b.failed(ctx, msg, fmt.Errorf("the proxy answered %d %s", status, http.StatusText(status)))
		return
	}
	if len(msg.calls) == 0 {
		return // a notification or response: 202 Accepted, nothing to relay
	}
	ct := mediaType(resp.Header.Get("Content-Type"))
	switch {
	case status == http.StatusAccepted || status == http.StatusNoContent:
		b.failed(ctx, msg, errors.New("the server accepted the request but sent no answer"))
	case ct == "application/json":
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxLine+1))
		if err == nil && len(body) > maxLine {
			err = errors.New("the answer exceeds the bridge's size limit")
		}
		if err == nil {
			_, err = b.deliver(body)
		}
		if err != nil {
			b.failed(ctx, msg, fmt.Errorf("reading the answer: %w", err))
		}
	case ct == "text/event-stream":
		b.stream(ctx, msg, resp)
	default:
		b.failed(ctx, msg, fmt.Errorf("the server answered with an unsupported content type %q", ct))
	}
}

// deliver writes one message from the server to the client, on one line, and returns the idKey of
// the request it answers ("" if it answers none).
func (b *Bridge) deliver(data []byte) (string, error) {
	if bytes.ContainsAny(data, "\r\n") {
		var buf bytes.Buffer
		if err := json.Compact(&buf, data); err != nil {
			return "", fmt.Errorf("the server sent a message that is not JSON: %w", err)
		}
		data = buf.Bytes()
	}
	key, err := b.answered(data)
	if err != nil {
		return "", err
	}
	b.emit(data)
	return key, nil
}

// answered decodes a server message's envelope and, for the answer to the client's initialize, keeps
// the negotiated protocol version, which every later request carries.
func (b *Bridge) answered(data []byte) (string, error) {
	trimmed := bytes.TrimLeft(data, " \t")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if !json.Valid(data) {
			return "", errors.New("the server sent a message that is not JSON")
		}
		return "", nil // a batch answer: the caller counts it as the whole answer
	}
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return "", fmt.Errorf("the server sent a message that is not JSON-RPC: %w", err)
	}
	if env.Method != "" || (!bool(env.Result) && !bool(env.Error)) {
		return "", nil // a request or notification from the server
	}
	key := idKey(env.ID)
	b.mu.Lock()
	isInit := key == b.initID
	b.mu.Unlock()
	if isInit && bool(env.Result) {
		var res struct {
			Result struct {
				ProtocolVersion lenientString `json:"protocolVersion"`
			} `json:"result"`
		}
		json.Unmarshal(data, &res) //nolint:errcheck // a result that is not an object has no version
		b.rt.setVersion(string(res.Result.ProtocolVersion))
	}
	return key, nil
}

// maxResumes bounds the attempts to resume an interrupted answer stream without progress, as the Go
// SDK's client does.
const maxResumes = 5

// stream relays the events of an SSE answer until every call of msg has its answer. A stream that ends
// early is resumed with Last-Event-ID when the server gave event ids; otherwise the calls still owed
// are answered with an error.
func (b *Bridge) stream(ctx context.Context, msg *message, resp *http.Response) {
	owed := make(map[string]bool, len(msg.calls))
	for _, id := range msg.calls {
		owed[id] = true
	}
	lastID, delay, noProgress := "", time.Second, 0
	for {
		progress, err := b.events(resp, owed, &lastID, &delay)
		resp.Body.Close()
		if len(owed) == 0 || ctx.Err() != nil {
			return
		}
		if err != nil {
			b.failed(ctx, &message{calls: keys(owed)}, err)
			return
		}
		if lastID == "" {
			b.failed(ctx, &message{calls: keys(owed)}, errors.New("the server ended the stream before it answered"))
			return
		}
		if progress {
			noProgress = 0
		} else if noProgress++; noProgress > maxResumes {
			b.failed(ctx, &message{calls: keys(owed)}, fmt.Errorf("the answer stream broke %d times without progress", noProgress))
			return
		}
		if resp = b.resume(ctx, lastID, delay); resp == nil {
			b.failed(ctx, &message{calls: keys(owed)}, errors.New("the answer stream broke and could not be resumed"))
			return
		}
	}
}

// events reads resp's events, relaying each message and crossing answered calls off owed. It returns
// once owed is empty (after letting the stream end, so the connection is reused), or when the stream
// ends. err is set only for a message that cannot be relayed.
func (b *Bridge) events(resp *http.Response, owed map[string]bool, lastID *string, delay *time.Duration) (progress bool, err error) {
	r := eventReaders.Get().(*bufio.Reader)
	r.Reset(resp.Body)
	defer func() {
		r.Reset(nil)
		eventReaders.Put(r)
	}()
	for {
		ev, rerr := readEvent(r)
		if rerr != nil {
			// The stream ended, within an event or after the last one: an event the stream did not
			// finish is dropped (WHATWG), and its id is not one to resume from.
			return progress, nil
		}
		if ev.hasID && ev.id != *lastID {
			*lastID, progress = ev.id, true
		}
		if ev.retry > 0 {
			*delay = ev.retry
		}
		if len(ev.data) > 0 && (ev.name == "" || ev.name == "message") {
			key, err := b.deliver(ev.data)
			if err != nil {
				return progress, err
			}
			if owed[key] {
				delete(owed, key)
			}
			if len(owed) == 0 || (key == "" && isBatchAnswer(ev.data)) {
				clear(owed)
				drain(resp.Body)
				return true, nil
			}
		}
	}
}

// eventReaders are the buffers answer streams are read through: one per call in flight.
var eventReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

func isBatchAnswer(data []byte) bool {
	trimmed := bytes.TrimLeft(data, " \t")
	return len(trimmed) > 0 && trimmed[0] == '['
}

// drain reads what is left of an answered stream (the server ends it right after the answer), so that
// the connection can be reused; a stream still open after a second is closed instead.
func drain(body io.ReadCloser) {
	t := time.AfterFunc(time.Second, func() { body.Close() })
	defer t.Stop()
	io.Copy(io.Discard, io.LimitReader(body, 1<<20))
}

// resume asks for the rest of an interrupted stream (GET with Last-Event-ID) after delay.
func (b *Bridge) resume(ctx context.Context, lastID string, delay time.Duration) *http.Response {
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(delay):
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.endpoint, nil)
	if err != nil {
		return nil
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", lastID)
	b.mu.Lock()
	if b.session != "" {
		req.Header.Set("Mcp-Session-Id", b.session)
	}
	b.mu.Unlock()
	resp, err := b.rt.RoundTrip(req)
	if err != nil {
		b.log("could not resume an answer stream: %v", err)
		return nil
	}
	ct := mediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		resp.Body.Close()
		b.log("could not resume an answer stream: the proxy answered %d", resp.StatusCode)
		return nil
	}
	return resp
}

// event is one server-sent event.
type event struct {
	name  string
	data  []byte
	id    string
	hasID bool
	retry time.Duration
}

// readEvent reads the next event (WHATWG server-sent events: fields up to a blank line, data lines
// joined with newlines, comments skipped). At the end of the stream it returns the event read so far
// with the error.
func readEvent(r *bufio.Reader) (event, error) {
	var ev event
	dataLines := 0
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long := bytes.Clone(line)
			for errors.Is(err, bufio.ErrBufferFull) && len(long) <= maxLine {
				line, err = r.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if err != nil {
				return ev, err
			}
			if dataLines > 0 || ev.hasID || ev.retry > 0 {
				return ev, nil
			}
			ev, dataLines = event{}, 0 // a block with no data still ends its event type
			continue
		}
		if line[0] != ':' {
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				ev.name = string(value)
			case "data":
				if dataLines > 0 {
					ev.data = append(ev.data, '\n')
				}
				ev.data = append(ev.data, value...)
				dataLines++
			case "id":
				ev.id, ev.hasID = string(value), true
			case "retry":
				if ms, perr := strconv.Atoi(string(value)); perr == nil && ms >= 0 {
					ev.retry = time.Duration(ms) * time.Millisecond
				}
			}
		}
		if err != nil {
			return ev, err
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// reopen replaces the session of generation gen with a new one, unless another caller already did.
// The client is not told: it keeps its session with the bridge.
func (b *Bridge) reopen(ctx context.Context, gen int) error {
	b.reopenMu.Lock()
	defer b.reopenMu.Unlock()
	b.mu.Lock()
	cur, init, inited := b.gen, b.init, b.inited
	b.mu.Unlock()
	if cur != gen {
		return nil // someone else re-opened it
	}
	if init == nil {
		return errors.New("the client has not initialized a session yet")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(init, &m); err != nil {
		return err
	}
	m["id"], _ = json.Marshal(reinitPrefix + strconv.Itoa(gen+1))
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	b.standardHeaders(req.Header, "initialize", "")
	resp, err := b.rt.RoundTrip(req)
	if err != nil {
		return err
	}
	session := resp.Header.Get("Mcp-Session-Id")
	answer, err := firstAnswer(resp)
	if err != nil {
		return err
	}
	var env envelope
	if err := json.Unmarshal(answer, &env); err != nil {
		return fmt.Errorf("the server's answer to initialize is not JSON-RPC: %w", err)
	}
	if rpc := errorAnswer(answer); rpc != nil {
		return fmt.Errorf("the server refused initialize: %d %s", rpc.Code, rpc.Message)
	}
	if inited {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.endpoint, bytes.NewReader([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		b.standardHeaders(req.Header, "notifications/initialized", "")
		resp, err := b.rt.RoundTrip(req)
		if err != nil {
			return err
		}
		drain(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("the server answered notifications/initialized with %d", resp.StatusCode)
		}
	}
	b.mu.Lock()
	b.session, b.gen = session, gen+1
	b.mu.Unlock()
	b.log("opened a new session with the server")
	return nil
}

// firstAnswer returns the first response in an answer to a request, JSON or SSE.
func firstAnswer(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if rpc := errorAnswer(body); rpc != nil {
			return nil, fmt.Errorf("the proxy answered %d: %s", resp.StatusCode, rpc.Message)
		}
		return nil, fmt.Errorf("the proxy answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	ct := mediaType(resp.Header.Get("Content-Type"))
	if ct != "text/event-stream" {
		return io.ReadAll(io.LimitReader(resp.Body, maxLine))
	}
	r := bufio.NewReader(resp.Body)
	for {
		ev, err := readEvent(r)
		if len(ev.data) > 0 && (ev.name == "" || ev.name == "message") {
			var env envelope
			if json.Unmarshal(ev.data, &env) == nil && env.Method == "" {
				drain(resp.Body)
				return ev.data, nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("the stream ended before the answer: %w", err)
		}
	}
}

// mediaType returns a Content-Type's media type, lower-cased, without parameters.
func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// rpcAnswer is a JSON-RPC error answer the proxy (or the server) sent with an HTTP error status.
type rpcAnswer struct {
	ID      json.RawMessage
	Code    int
	Message string
	Data    json.RawMessage
}

// errorAnswer decodes body as a JSON-RPC error answer, or returns nil.
func errorAnswer(body []byte) *rpcAnswer {
	var env struct {
		ID    json.RawMessage `json:"id"`
		Error *struct {
			Code    int             `json:"code"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil || env.Error == nil {
		return nil
	}
	return &rpcAnswer{ID: env.ID, Code: env.Error.Code, Message: env.Error.Message, Data: env.Error.Data}
}

// answersOne reports whether a JSON-RPC id is that of one of calls.
func answersOne(id json.RawMessage, calls []string) bool {
	if isNull(id) {
		return false
	}
	k := idKey(id)
	for _, c := range calls {
		if c == k {
			return true
		}
	}
	return false
}

// relayError answers msg's calls with the JSON-RPC error the proxy sent (auth_failure and the like keep
// their code and data).
func (b *Bridge) relayError(ctx context.Context, msg *message, rpc *rpcAnswer, status int) {
	if len(msg.calls) == 0 {
		if ctx.Err() == nil {
			b.log("the proxy refused a message (%d): %s", status, rpc.Message)
		}
		return
	}
	for _, id := range msg.calls {
		b.writeError(id, rpc.Code, rpc.Message, rpc.Data)
	}
}

// failed answers msg's calls with err: a proxy_error of subtype "bridge" naming the server. A
// notification or response that could not be relayed is logged.
func (b *Bridge) failed(ctx context.Context, msg *message, err error) {
	if ctx.Err() != nil {
		return // the client is gone
	}
	if len(msg.calls) == 0 {
		b.log("could not relay a message to the server: %v", err)
		return
	}
	data, _ := json.Marshal(proxy.ErrorData{Type: "proxy_error", Subtype: proxy.SubtypeBridge, Retryable: true, Server: b.cfg.Server,
		Action: "retry the call; if it keeps failing, check `authkeeper status`"})
	for _, id := range msg.calls {
		b.writeError(id, proxy.CodeProxyError, fmt.Sprintf("authkeeper bridge: %s: %v", b.cfg.Server, err), data)
	}
}

// replyParse answers a line that is not JSON-RPC, as a JSON-RPC server does (id null).
func (b *Bridge) replyParse(ctx context.Context, why string) {
	if ctx.Err() == nil {
		b.writeError("", -32700, "parse error: "+why, nil)
	}
}

// writeError writes an error answer to call id (an idKey; "" for null).
func (b *Bridge) writeError(id string, code int, message string, data json.RawMessage) {
	type wireError struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data,omitempty"`
	}
	line, err := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   wireError       `json:"error"`
	}{"2.0", rawID(id), wireError{code, message, data}})
	if err != nil {
		b.log("cannot encode an error answer: %v", err)
		return
	}
	b.emit(line)
}
