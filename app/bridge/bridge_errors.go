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
