package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Agent is an MCP client session of the official Go SDK to one server through the installation's
// proxy, as an agent holds one. Safe for concurrent use (the SDK session is).
type Agent struct {
	Server string
	cs     *mcp.ClientSession
}

// Connect opens a Streamable HTTP session to server through the proxy (the access key in the path,
// as `authkeeper clients` hands it to clients that cannot set headers). The session is closed by
// t.Cleanup.
func (in *Install) Connect(t testing.TB, server string) *Agent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	endpoint := in.KeyedEndpoint(server)
	c := mcp.NewClient(&mcp.Implementation{Name: "e2e-" + server, Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint}, nil)
	if err != nil {
		t.Fatalf("connect to %s through the proxy: %v", server, err)
	}
	t.Cleanup(func() { cs.Close() })
	return &Agent{Server: server, cs: cs}
}

// AuthFailure is the `data` of a proxy's structured JSON-RPC error (codes -32050 and -32051).
type AuthFailure struct {
	Code      int64  `json:"-"`
	Type      string `json:"type"`
	Subtype   string `json:"subtype"`
	Retryable bool   `json:"retryable"`
	Server    string `json:"server"`
	Action    string `json:"action"`
}

func (f *AuthFailure) Error() string {
	return fmt.Sprintf("%s/%s (code %d, retryable %t): %s", f.Type, f.Subtype, f.Code, f.Retryable, f.Action)
}

// Echo calls the bench servers' echo tool and returns its text. A structured proxy error comes back
// as *AuthFailure.
func (a *Agent) Echo(ctx context.Context, text string) (string, error) {
	res, err := a.cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
	var wire *jsonrpc.Error
	if errors.As(err, &wire) {
		f := &AuthFailure{Code: wire.Code}
		if json.Unmarshal(wire.Data, f) == nil && f.Type != "" {
			return "", f
		}
		return "", err
	}
	if err != nil {
		return "", err
	}
	if res.IsError || len(res.Content) != 1 {
		return "", fmt.Errorf("echo: tool error %v", res.Content)
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		return "", fmt.Errorf("echo: unexpected content %T", res.Content[0])
	}
	return tc.Text, nil
}

// MustEcho calls echo and fails the test unless the answer is the text sent.
func (a *Agent) MustEcho(t testing.TB, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := a.Echo(ctx, text)
	if err != nil || got != text {
		t.Fatalf("echo %q through the proxy to %s: got %q, %v", text, a.Server, got, err)
	}
}
