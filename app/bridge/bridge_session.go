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
	"time"
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
	if msg.version != "" {
		// The message's own version wins over the session's, as in the Go SDK's HTTP client: a
		// server rejects a request whose _meta names a version its header does not (-32020).
		h["Mcp-Protocol-Version"] = []string{msg.version}
	}
	if !msg.batch {
		b.standardHeaders(h, msg.method, msg.name, msg.version)
	}
	return &pending{x: b.rt.start(req), gen: gen, session: h.Get("Mcp-Session-Id") != ""}
}

// standardHeaders sets the Mcp-Method and Mcp-Name headers that servers of protocol 2026-07-28 and
// later require on a request (none on a response). version is the message's own (see
// message.version), else the session's applies.
func (b *Bridge) standardHeaders(h http.Header, method, name, version string) {
	if version == "" {
		version = b.rt.getVersion()
	}
	if method == "" || version < minStandardHeaders {
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
		a := p.x.wait()
		if a.err != nil {
			b.failed(ctx, msg, outcomeOf(a), a.err)
			return
		}
		resp := a.resp
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
				b.failed(ctx, msg, notForwarded, errSessionEnded) // a 404 for the session: not processed
				return
			}
			if err := b.reopen(ctx, p.gen); err != nil {
				b.failed(ctx, msg, notForwarded, fmt.Errorf("the server's session ended and a new one could not be opened: %w", err))
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
		b.failed(ctx, msg, mayHaveRun, fmt.Errorf("the proxy answered %d %s", status, http.StatusText(status)))
		return
	}
	if len(msg.calls) == 0 {
		return // a notification or response: 202 Accepted, nothing to relay
	}
	ct := mediaType(resp.Header.Get("Content-Type"))
	switch {
	case status == http.StatusAccepted || status == http.StatusNoContent:
		b.failed(ctx, msg, mayHaveRun, errors.New("the server accepted the request but sent no answer"))
	case ct == "application/json":
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxLine+1))
		if err == nil && len(body) > maxLine {
			err = errors.New("the answer exceeds the bridge's size limit")
		}
		if err == nil {
			_, err = b.deliver(body)
		}
		if err != nil {
			b.failed(ctx, msg, mayHaveRun, fmt.Errorf("reading the answer: %w", err))
		}
	case ct == "text/event-stream":
		b.stream(ctx, msg, resp)
	default:
		b.failed(ctx, msg, mayHaveRun, fmt.Errorf("the server answered with an unsupported content type %q", ct))
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
	b.standardHeaders(req.Header, "initialize", "", "")
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
		b.standardHeaders(req.Header, "notifications/initialized", "", "")
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
