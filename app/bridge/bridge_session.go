package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// reinitPrefix marks the id of an initialize the bridge replays to open a new session; its answer is
// the bridge's, not the client's.
const reinitPrefix = "authkeeper-reinit-"

// codeRejectedByTransport is the code of the Go SDK's jsonrpc2.ErrRejected, which wraps every
// transport failure of a Streamable HTTP client connection.
const codeRejectedByTransport = -32005

func isReinitID(id jsonrpc.ID) bool {
	s, ok := id.Raw().(string)
	return ok && strings.HasPrefix(s, reinitPrefix)
}

// forward writes one client message upstream. A call that cannot be written is answered with an
// error, so the client never waits for an answer that cannot come.
func (b *Bridge) forward(ctx context.Context, msg jsonrpc.Message) {
	req, isCall := msg.(*jsonrpc.Request)
	isCall = isCall && req.IsCall()
	if isCall {
		b.mu.Lock()
		b.pending[req.ID] = false
		b.mu.Unlock()
	}
	err := b.write(ctx, msg)
	if !isCall {
		if err != nil && ctx.Err() == nil {
			b.log("could not relay a message to the server: %v", err)
		}
		return
	}
	b.mu.Lock()
	_, waiting := b.pending[req.ID]
	switch {
	case err != nil:
		delete(b.pending, req.ID)
	case waiting:
		b.pending[req.ID] = true
	}
	b.mu.Unlock()
	if err != nil && waiting && ctx.Err() == nil {
		b.reply(ctx, req.ID, err)
	}
}

// write sends msg on the current session. When the session is gone (the server answered 404, or the
// connection failed for good) it opens a new one, replaying the client's initialize, and sends msg
// once more: a request the server answered 404 was never processed, so sending it again is safe.
func (b *Bridge) write(ctx context.Context, msg jsonrpc.Message) error {
	for attempt := 0; ; attempt++ {
		b.mu.Lock()
		up, gen, broken := b.up, b.gen, b.broken
		b.mu.Unlock()
		var err error
		if !broken {
			if err = up.Write(ctx, msg); err == nil {
				return nil
			}
			if !errors.Is(err, mcp.ErrSessionMissing) {
				return err
			}
		}
		if attempt > 0 || isInitialize(msg) {
			if err == nil {
				err = errors.New("the server's session ended")
			}
			return err
		}
		if rerr := b.reopen(ctx, gen); rerr != nil {
			return fmt.Errorf("the server's session ended and a new one could not be opened: %w", rerr)
		}
	}
}

func isInitialize(msg jsonrpc.Message) bool {
	req, ok := msg.(*jsonrpc.Request)
	return ok && req.Method == "initialize"
}

// upstreamEnded handles the end of a connection's message stream: a replaced connection ends
// quietly; the current one is marked broken, and the calls it still owed are answered with an error.
func (b *Bridge) upstreamEnded(ctx context.Context, gen int, err error) {
	if ctx.Err() != nil {
		return
	}
	b.mu.Lock()
	if gen != b.gen {
		b.mu.Unlock()
		return
	}
	b.broken = true
	var owed []jsonrpc.ID
	for id, written := range b.pending {
		if written { // a call still being written is answered by its writer
			owed = append(owed, id)
			delete(b.pending, id)
		}
	}
	b.mu.Unlock()
	b.log("the server's session ended (%v); the next message opens a new one", err)
	for _, id := range owed {
		b.reply(ctx, id, fmt.Errorf("the server's session ended before it answered: %w", err))
	}
}

// reopen replaces the connection of generation gen with a new session, unless another caller already
// did. The client is not told: it keeps its session with the bridge.
func (b *Bridge) reopen(ctx context.Context, gen int) error {
	b.reopenMu.Lock()
	defer b.reopenMu.Unlock()
	b.mu.Lock()
	old, cur, init, inited := b.up, b.gen, b.init, b.inited
	b.mu.Unlock()
	if cur != gen {
		return nil // someone else re-opened it
	}
	if init == nil {
		return errors.New("the client has not initialized a session yet")
	}
	old.Close()
	conn, err := b.dial(ctx)
	if err != nil {
		return err
	}
	id, err := jsonrpc.MakeID(fmt.Sprintf("%s%d", reinitPrefix, gen+1))
	if err != nil {
		return err
	}
	go b.relayUp(ctx, conn, gen+1)
	select { // drop a stale answer from an earlier attempt
	case <-b.reinit:
	default:
	}
	if err := conn.Write(ctx, &jsonrpc.Request{ID: id, Method: "initialize", Params: init.Params}); err != nil {
		conn.Close()
		return err
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	select {
	case resp := <-b.reinit:
		if resp.Error != nil {
			conn.Close()
			return resp.Error
		}
	case <-timeout.C:
		conn.Close()
		return errors.New("the server did not answer initialize within 30s")
	case <-ctx.Done():
		conn.Close()
		return ctx.Err()
	}
	if inited {
		if err := conn.Write(ctx, &jsonrpc.Request{Method: "notifications/initialized"}); err != nil {
			conn.Close()
			return err
		}
	}
	b.mu.Lock()
	b.up, b.gen, b.broken = conn, gen+1, false
	b.mu.Unlock()
	b.log("opened a new session with the server")
	return nil
}

// reply answers call id with err: the proxy's JSON-RPC error when it sent one (auth_failure and the
// like keep their code and data), else a proxy_error of subtype "bridge" naming the server.
func (b *Bridge) reply(ctx context.Context, id jsonrpc.ID, err error) {
	var wire *jsonrpc.Error
	// The SDK marks its own transport failures with a "rejected by transport" error of its own; that
	// says nothing to the client, so only an error the proxy sent is relayed as it is.
	if !errors.As(err, &wire) || wire.Code == codeRejectedByTransport {
		data, _ := json.Marshal(proxy.ErrorData{Type: "proxy_error", Subtype: proxy.SubtypeBridge, Retryable: true, Server: b.cfg.Server,
			Action: "retry the call; if it keeps failing, check `authkeeper status`"})
		wire = &jsonrpc.Error{Code: proxy.CodeProxyError, Message: fmt.Sprintf("authkeeper bridge: %s: %v", b.cfg.Server, err), Data: data}
	}
	if werr := b.down.Write(ctx, &jsonrpc.Response{ID: id, Error: wire}); werr != nil && ctx.Err() == nil {
		b.log("cannot write to the client: %v", werr)
	}
}
