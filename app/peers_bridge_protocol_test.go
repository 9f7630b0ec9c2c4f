package app

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/e2e"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestNewProtocolThroughTheProxyAndTheBridge: against a stateless Go SDK server, which speaks MCP
// 2026-07-28 (no initialize; each request names its version in _meta and in Mcp-Protocol-Version,
// with Mcp-Method and Mcp-Name), a Go SDK client negotiates 2026-07-28 and calls a tool both through
// the proxy over HTTP and through the real `authkeeper bridge` over stdio. Before the bridge carried
// each request's own version, its clients fell back to 2025-11-25.
func TestNewProtocolThroughTheProxyAndTheBridge(t *testing.T) {
	const newProtocol = "2026-07-28"
	bin := e2e.MustBinary(t) // before newBench moves HOME
	b := newBench(t, benchOptions{Home: true, Stateless: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stderr := &testbed.SyncBuffer{}
	cmd := exec.Command(bin, "bridge", "bench")
	cmd.Env, cmd.Stderr = os.Environ(), stderr
	for _, tc := range []struct {
		name string
		tr   mcp.Transport
	}{
		{"proxy", &mcp.StreamableClientTransport{Endpoint: b.eng.ProxyEndpoint("bench"), HTTPClient: &http.Client{}}},
		{"bridge", &mcp.CommandTransport{Command: cmd, TerminateDuration: time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil).Connect(ctx, tc.tr, nil)
			if err != nil {
				t.Fatalf("connect: %v\n%s", err, stderr)
			}
			defer cs.Close()
			if v := cs.InitializeResult().ProtocolVersion; v != newProtocol {
				t.Errorf("negotiated %q; want %q", v, newProtocol)
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "new"}})
			if err != nil || res.IsError {
				t.Fatalf("tools/call: %+v, %v\n%s", res, err, stderr)
			}
		})
	}
}
