package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// newProtocol is the first MCP protocol version without initialize (SEP-2575): each request names
// its version in params._meta, and over HTTP says it again in Mcp-Protocol-Version.
const newProtocol = "2026-07-28"

// TestBridgeCarriesEachRequestsOwnProtocolVersion: a request that names its protocol version in
// params._meta goes to the server with that version in Mcp-Protocol-Version and, from 2026-07-28, with
// Mcp-Method (and Mcp-Name), as the Go SDK's own HTTP client sends it. Without them a real Go SDK
// server refuses it (-32020): the SDK client's server/discover through the bridge failed, and the
// client fell back to the old protocol. Against a stateless server (which speaks 2026-07-28) a Go SDK
// client through the bridge now negotiates 2026-07-28 and calls tools with it.
func TestBridgeCarriesEachRequestsOwnProtocolVersion(t *testing.T) {
	t.Run("discover on a stateful server", func(t *testing.T) {
		d := newDirectServer(t)
		rb := newRawBridge(t, d.url)
		answer := rb.exchange(`{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{` +
			`"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},` +
			`"io.modelcontextprotocol/protocolVersion":"` + newProtocol + `"}}}`)
		if answer["id"] != float64(1) || answer["error"] != nil || answer["result"] == nil {
			t.Errorf("server/discover through the bridge: %v; want a result", answer)
		}
		rb.end()
		d.mu.Lock()
		defer d.mu.Unlock()
		if len(d.requests) == 0 {
			t.Fatal("the server saw no request")
		}
		h := d.requests[0]
		if h.Get("Mcp-Protocol-Version") != newProtocol || h.Get("Mcp-Method") != "server/discover" {
			t.Errorf("server/discover went with Mcp-Protocol-Version %q, Mcp-Method %q; want %q, server/discover",
				h.Get("Mcp-Protocol-Version"), h.Get("Mcp-Method"), newProtocol)
		}
	})

	t.Run("a Go SDK client and a stateless server", func(t *testing.T) {
		d := newDirectServerWith(t, &mcp.StreamableHTTPOptions{Stateless: true})
		cs, log := startBridge(t, "direct", func(context.Context, bool) (control.ProxyInfo, error) {
			return control.ProxyInfo{URL: d.url, Key: "k", Receipts: true}, nil
		})
		if v := cs.InitializeResult().ProtocolVersion; v != newProtocol {
			t.Errorf("the client negotiated %q through the bridge; want %q\nbridge log:\n%s", v, newProtocol, log)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "new"}})
		if err != nil || res.IsError || len(res.Content) != 1 || res.Content[0].(*mcp.TextContent).Text != "new" {
			t.Fatalf("tools/call through the bridge: %+v, %v\nbridge log:\n%s", res, err, log)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		var call bool
		for _, h := range d.requests {
			if h.Get("Mcp-Method") == "tools/call" {
				call = h.Get("Mcp-Name") == "echo" && h.Get("Mcp-Protocol-Version") == newProtocol
			}
		}
		if !call {
			t.Errorf("no tools/call reached the server with Mcp-Name echo and Mcp-Protocol-Version %s", newProtocol)
		}
	})
}
