package testbed

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TSMCPServer starts, under node, an MCP server built on the official TypeScript SDK (node/mcp-ts.mjs):
// the SDK's StreamableHTTPServerTransport with stateful sessions (GET stream, DELETE), behind the SDK's
// requireBearerAuth, with RFC 9728 metadata from the SDK's mcpAuthMetadataRouter. It serves the same
// tools as GoMCPServer. It is stopped by t.Cleanup and its output is logged if the test failed.
//
// SDK behaviour kept as is, and unlike the Go server: 401 and 403 challenges carry error= and
// error_description= (403: error="insufficient_scope"); sessions are not bound to a user; the
// router also mirrors the issuer's metadata at /.well-known/oauth-authorization-server on the MCP
// server's origin. An unknown session id gets 404, as the specification asks. ProtectedMethods and
// ToolCallScopes route each POST by its parsed JSON-RPC body to the right requireBearerAuth, as
// mcpGate does for the Go server.
func TSMCPServer(t testing.TB, opts MCPServerOptions) *MCPServer {
	t.Helper()
	opts = opts.validate(t)
	if opts.Legacy != LegacyNone {
		t.Fatal("TSMCPServer: Legacy is offered by GoMCPServer only")
	}
	if opts.Stateless {
		t.Fatal("TSMCPServer: Stateless is offered by GoMCPServer only")
	}
	dir := NodeDir(t)
	cfg, err := json.Marshal(map[string]any{
		"issuer":                    opts.Issuer,
		"advertiseAS":               opts.advertisedAS(),
		"originResource":            opts.OriginResource,
		"protectedMethods":          opts.ProtectedMethods,
		"toolCallScopes":            opts.ToolCallScopes,
		"jsonResponse":              opts.JSONResponse,
		"requiredScopes":            opts.RequiredScopes,
		"opaque":                    opts.Opaque,
		"introspectionClientId":     opts.IntrospectionClientID,
		"introspectionClientSecret": opts.IntrospectionClientSecret,
		"path":                      opts.Path,
	})
	if err != nil {
		t.Fatalf("ts mcp server config: %v", err)
	}
	cmd := exec.Command("node", filepath.Join(dir, "mcp-ts.mjs"))
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "AK_MCP_CONFIG="+string(cfg))
	p := StartProcess(t, "ts mcp server", cmd)
	endpoint := strings.TrimSpace(p.WaitLine(t, "READY ", 20*time.Second))
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatalf("ts mcp server printed a bad URL %q: %v", endpoint, err)
	}
	base := u.Scheme + "://" + u.Host
	resource := opts.resource(base)
	return &MCPServer{
		URL:                 endpoint,
		Resource:            resource,
		ResourceMetadataURL: resourceMetadataURL(resource),
		stats:               func(t testing.TB) MCPStats { t.Helper(); return fetchStats(t, base+"/_bench/stats") },
		endSessions: func(t testing.TB) {
			t.Helper()
			resp, err := http.Post(base+"/_bench/end-sessions", "application/json", nil)
			if err != nil {
				t.Fatalf("ts mcp end sessions: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("ts mcp end sessions: %s", resp.Status)
			}
		},
	}
}

// fetchStats reads the TS server's counters from its test-only route.
func fetchStats(t testing.TB, statsURL string) MCPStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, statsURL, nil)
	if err != nil {
		t.Fatalf("ts mcp stats: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("ts mcp stats: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("ts mcp stats: %s %v", resp.Status, err)
	}
	var s struct{ Requests, Unauthorized, Forbidden int }
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("ts mcp stats: %v", err)
	}
	return MCPStats{Requests: s.Requests, Unauthorized: s.Unauthorized, Forbidden: s.Forbidden}
}
