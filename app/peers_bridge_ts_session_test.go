package app

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/bridge"
	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestBridgeReopensASessionTheTypeScriptServerEnded: the official TypeScript SDK answers a request on
// an ended session with 404 and a JSON-RPC error whose id is null (not the Go SDK's plain text). Behind
// the real proxy, the bridge takes that for the end of the session, not for the call's answer: it
// opens a new session by replaying the client's initialize, and the client's next call succeeds in its
// one session.
func TestBridgeReopensASessionTheTypeScriptServerEnded(t *testing.T) {
	b := newBench(t, benchOptions{TS: true})
	clientIn, bridgeOut := io.Pipe()
	bridgeIn, clientOut := io.Pipe()
	log := &testbed.SyncBuffer{}
	br, err := bridge.NewBridge(bridge.BridgeConfig{Server: "bench", In: bridgeIn, Out: bridgeOut, Log: log,
		Resolve: func(context.Context, bool) (control.ProxyInfo, error) {
			return control.ProxyInfo{URL: b.eng.ProxyURL(), Key: b.eng.ProxyKey(), Receipts: true}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "ts-session", Version: "1"}, nil).Connect(ctx, &mcp.IOTransport{Reader: clientIn, Writer: clientOut}, nil)
	if err != nil {
		t.Fatalf("connect through the bridge: %v\n%s", err, log)
	}
	echo := func(text string) error {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
		if err == nil && (res.IsError || !strings.Contains(res.Content[0].(*mcp.TextContent).Text, text)) {
			t.Errorf("echo %q answered %+v", text, res.Content)
		}
		return err
	}
	if err := echo("before"); err != nil {
		t.Fatalf("first call: %v\n%s", err, log)
	}
	b.srv.EndSessions(t)
	if err := echo("after"); err != nil {
		t.Fatalf("a call after the server ended the session: %v\nbridge log:\n%s", err, log)
	}
	if !strings.Contains(log.String(), "opened a new session") {
		t.Errorf("the bridge did not say it opened a new session:\n%s", log)
	}
	cs.Close()
	clientOut.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("bridge: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the bridge did not end after its input closed")
	}
}
