package app

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/e2e"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// localeEnv is this process's environment without any locale variable, plus the given ones.
func localeEnv(vars ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "LANG" || k == "LANGUAGE" || strings.HasPrefix(k, "LC_") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, vars...)
}

// TestBridgeAndHeadersWriteNothingOnStderrInAnyLocale runs the real binary's `headers` and `bridge`
// — whose stderr Claude Code and MCP clients show to the user — against an owner signed in to the real
// AS and MCP server, under LANG=C.UTF-8 (the default of Debian and Ubuntu containers and CI images),
// LANG=C and no locale at all: each succeeds and writes nothing on stderr (fyne, linked in for the
// tray, used to log "Error parsing user locale C" there; see app/locale).
func TestBridgeAndHeadersWriteNothingOnStderrInAnyLocale(t *testing.T) {
	bin := e2e.MustBinary(t) // before newBench moves HOME
	newBench(t, benchOptions{Home: true})
	for _, tc := range []struct {
		name   string
		locale []string
	}{
		{"C.UTF-8", []string{"LANG=C.UTF-8"}},
		{"C", []string{"LANG=C"}},
		{"unset", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			headers := exec.Command(bin, "headers", "bench")
			headers.Env = localeEnv(tc.locale...)
			var stderr strings.Builder
			headers.Stderr = &stderr
			out, err := headers.Output()
			var h map[string]string
			if err != nil || json.Unmarshal(out, &h) != nil || !strings.HasPrefix(h["Authorization"], "Bearer ") {
				t.Errorf("headers: %v, %d bytes of stdout that are not the Authorization header", err, len(out))
			}
			if stderr.Len() != 0 {
				t.Errorf("headers wrote to stderr:\n%s", stderr.String())
			}

			bridgeErr := &testbed.SyncBuffer{}
			bridge := exec.Command(bin, "bridge", "bench")
			bridge.Env, bridge.Stderr = localeEnv(tc.locale...), bridgeErr
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cs, err := mcp.NewClient(&mcp.Implementation{Name: "agent", Version: "1"}, nil).Connect(ctx,
				&mcp.CommandTransport{Command: bridge, TerminateDuration: 5 * time.Second}, nil)
			if err != nil {
				t.Fatalf("bridge: %v\n%s", err, bridgeErr)
			}
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": tc.name}})
			if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != tc.name {
				t.Errorf("bridge call: %v %v", err, res)
			}
			if err := cs.Close(); err != nil {
				t.Errorf("bridge exit: %v", err)
			}
			if bridgeErr.String() != "" {
				t.Errorf("bridge wrote to stderr:\n%s", bridgeErr)
			}
		})
	}
}
