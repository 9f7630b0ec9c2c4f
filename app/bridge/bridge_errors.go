package bridge

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/authkeeper/authkeeper/app/proxy"
)

// The answers the bridge gives itself: the proxy's JSON-RPC errors passed on, and its own proxy_error
// (subtype "bridge") for a call it could not relay.

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

// outcome is what may have become of a message the bridge could not relay. The answer's retryable
// flag and its words derive from it: a client that obeys retryable must never run a call twice.
type outcome int

const (
	// mayHaveRun: the owner may have forwarded the message (it gave its receipt, read the body, or
	// answered), so the call may or may not have run. The zero value: a failure nobody classified
	// is never called safe to retry.
	mayHaveRun outcome = iota
	// notForwarded: the owner cannot have forwarded it (the proxy could not be dialled, the
	// connection failed before its receipt, or the server answered that the session is gone), so
	// the call can be sent again.
	notForwarded
)

// outcomeOf classifies a failed attempt (see attempt.unseen).
func outcomeOf(a attempt) outcome {
	if a.unseen {
		return notForwarded
	}
	return mayHaveRun
}

// failed answers msg's calls with err: a proxy_error of subtype "bridge" naming the server, retryable
// only when the calls cannot have run. A notification or response that could not be relayed is
// logged.
func (b *Bridge) failed(ctx context.Context, msg *message, out outcome, err error) {
	if ctx.Err() != nil {
		return // the client is gone
	}
	if len(msg.calls) == 0 {
		b.log("could not relay a message to the server: %v", err)
		return
	}
	d := proxy.ErrorData{Type: "proxy_error", Subtype: proxy.SubtypeBridge, Server: b.cfg.Server}
	text := fmt.Sprintf("authkeeper bridge: %s: %v", b.cfg.Server, err)
	switch out {
	case notForwarded:
		d.Retryable, d.Action = true, "retry the call; if it keeps failing, check `authkeeper status`"
	default:
		text += " (the call may or may not have run)"
		d.Action = "check whether the call took effect before you retry it, so that it does not run twice; " +
			"if calls keep failing, check `authkeeper status`"
	}
	data, _ := json.Marshal(d)
	for _, id := range msg.calls {
		b.writeError(id, proxy.CodeProxyError, text, data)
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
