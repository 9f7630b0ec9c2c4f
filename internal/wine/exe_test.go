//go:build linux

package wine

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// wineStart bounds a Windows program's start under Wine: a few seconds, much more when the machine is
// busy or the prefix's wineserver is starting.
const wineStart = 2 * time.Minute

// TestWindowsExeSignsInWithADeviceCodeAndServesToolCallsUnderWine runs the real tray exe under Wine
// against Linux peers: `serve` with the file store; `add --device`, whose code the Linux-side browser
// approves at the Linux oidc-provider; `status --json` over the control pipe; then MCP tool calls
// from Linux through the exe's proxy to the Linux Go SDK server, carrying the token the exe stored.
// That token is in no output of the exe and in no file of its own but the credentials file.
func TestWindowsExeSignsInWithADeviceCodeAndServesToolCallsUnderWine(t *testing.T) {
	b := newBench(t)
	b.artefact(t, "authkeeper.exe")
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{})
	srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: as.Issuer, RequiredScopes: []string{"mcp:read"}})
	appData := t.TempDir()
	port := testbed.FreePort(t)

	serve := testbed.StartProcess(t, "authkeeper.exe serve",
		b.appCommand(t, appData, nil, "serve", "--store", "file", "--proxy-addr", fmt.Sprintf("127.0.0.1:%d", port)))
	serve.WaitLine(t, "  config:", wineStart)

	add := testbed.StartProcess(t, "authkeeper.exe add", b.appCommand(t, appData, nil, "add", srv.URL, "--name", "bench", "--device"))
	// "To sign in, open URI and enter the code CODE"
	uri, code, ok := strings.Cut(add.WaitLine(t, "To sign in, open ", wineStart), " and enter the code ")
	if !ok {
		t.Fatalf("no device code in the add output:\n%s", add.Output())
	}
	if err := testbed.NewBrowser(t, testbed.BrowserOptions{}).ApproveDevice(t.Context(), uri, strings.TrimSpace(code)); err != nil {
		t.Fatalf("approve the device code at %s: %v", uri, err)
	}
	waitExit(t, add, "add")
	if !strings.Contains(add.Output(), "Added bench") {
		t.Fatalf("add output:\n%s", add.Output())
	}

	status := testbed.StartProcess(t, "authkeeper.exe status", b.appCommand(t, appData, nil, "status", "--json"))
	waitExit(t, status, "status --json")
	var h engine.Health
	if err := json.Unmarshal([]byte(status.Output()), &h); err != nil {
		t.Fatalf("status --json: %v\n%s", err, status.Output())
	}
	if len(h.Servers) != 1 || h.Servers[0].Name != "bench" || h.Servers[0].State != "healthy" || h.Servers[0].SecondsLeft <= 0 {
		t.Fatalf("status: %+v, want bench healthy with time left", h.Servers)
	}
	if want := fmt.Sprintf("http://127.0.0.1:%d", port); h.ProxyURL != want || h.Temporary {
		t.Errorf("status: proxy %q (temporary %t), want serve's %s", h.ProxyURL, h.Temporary, want)
	}

	cfgDir := filepath.Join(appData, "authkeeper")
	rec := storedRecord(t, cfgDir, "bench")
	key, err := os.ReadFile(filepath.Join(cfgDir, "proxy.key"))
	if err != nil {
		t.Fatal(err)
	}
	endpoint := fmt.Sprintf("http://127.0.0.1:%d/%s/mcp/bench", port, strings.TrimSpace(string(key)))
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "linux-agent", Version: "1"}, nil).
		Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: http.DefaultClient, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatalf("connect through the exe's proxy: %v", err)
	}
	defer cs.Close()
	if got := callText(t, cs, "echo", map[string]any{"text": "from Linux through Wine"}); got != "from Linux through Wine" {
		t.Errorf("echo = %q", got)
	}
	var who testbed.Whoami
	if err := json.Unmarshal([]byte(callText(t, cs, "whoami", map[string]any{})), &who); err != nil {
		t.Fatal(err)
	}
	// The server saw the token the exe stored: the client it registered, its expiry.
	if who.Subject == "" || who.ClientID != rec.Binding.ClientID || who.ExpiresAt != rec.Expiry.Unix() {
		t.Errorf("whoami %+v, want the stored grant's client %q, expiry %d", who, rec.Binding.ClientID, rec.Expiry.Unix())
	}
	t.Logf("under Wine: signed in as %s (client %s, %s), status %s with %.0fs left; tool calls through the proxy on port %d",
		who.Subject, who.ClientID, strings.Join(who.Scopes, " "), h.Servers[0].State, h.Servers[0].SecondsLeft, port)

	serve.Stop()
	secrets := []string{rec.AccessToken, rec.RefreshToken}
	for name, out := range map[string]string{"serve": serve.Output(), "add": add.Output(), "status": status.Output()} {
		for _, s := range secrets {
			if s != "" && strings.Contains(out, s) {
				t.Errorf("the output of %s holds a token", name)
			}
		}
	}
	// The audit log, the settings, the proxy key: only the credentials file may hold the tokens.
	err = filepath.WalkDir(appData, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "credentials.json" {
			return err
		}
		data, err := os.ReadFile(path)
		for _, s := range secrets {
			if s != "" && strings.Contains(string(data), s) {
				t.Errorf("%s holds a token", path)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// storedRecord reads server name's record from the file store in dir (--store file: credentials.json).
func storedRecord(t *testing.T, dir, name string) keychain.Record {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Records map[string]keychain.Record `json:"records"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatalf("credentials.json: %v", err)
	}
	for key, r := range file.Records {
		if strings.Contains(key, name) && r.AccessToken != "" {
			return r
		}
	}
	t.Fatalf("no token of %s in credentials.json (records %d)", name, len(file.Records))
	return keychain.Record{}
}

// waitExit waits for a command run under Wine to exit and fails the test unless it exited 0.
func waitExit(t *testing.T, p *testbed.Process, what string) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(wineStart):
		t.Fatalf("%s did not exit within %v; output:\n%s", what, wineStart, p.Output())
	}
	if err := p.ExitErr(); err != nil {
		t.Fatalf("%s: %v; output:\n%s", what, err, p.Output())
	}
}

// callText calls a tool and returns its single text content.
func callText(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) string {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("call %s through the proxy: %v", tool, err)
	}
	if !res.IsError && len(res.Content) == 1 {
		if text, ok := res.Content[0].(*mcp.TextContent); ok {
			return text.Text
		}
	}
	t.Fatalf("call %s: error=%t, content %v", tool, res.IsError, res.Content)
	return ""
}
