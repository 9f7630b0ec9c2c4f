package clients

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestAuditReportsEntriesThatPointAtAuthkeeperAndHowTheyDisagree pins Audit, one client file per case:
// an entry is reported when it reaches authkeeper (proxy URL, bridge, headers helper) and only then;
// its Problem names a stale key, a wrong port, a missing key, a key or URL under a member the client
// ignores, a bridge that no longer exists, a turned-off entry; JSONC is read; a file that does not
// parse is one Finding of its own; a missing file is none.
func TestAuditReportsEntriesThatPointAtAuthkeeperAndHowTheyDisagree(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "authkeeper")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	lean := filepath.Join(filepath.Dir(exe), "authkeeper-headless")
	if err := os.WriteFile(lean, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := Setup{ProxyURL: "http://127.0.0.1:5000", Key: "key-now", Exe: exe}
	const (
		good  = `"url": "http://127.0.0.1:5000/mcp/bench", "headers": {"X-Authkeeper-Key": "key-now"}`
		stale = `"url": "http://127.0.0.1:5000/mcp/bench", "headers": {"X-Authkeeper-Key": "key-old"}`
	)
	for _, tc := range []struct {
		name, path, content string
		want                []Finding
	}{
		{name: "missing file", path: "", want: nil},
		{name: "claude code: good, stale, port, elsewhere, helper, key in path",
			path: ".claude.json",
			content: `{"mcpServers": {
				"a": {"type": "http", ` + good + `},
				"b": {"type": "http", ` + stale + `},
				"c": {"type": "http", "url": "http://127.0.0.1:47615/mcp/docs", "headers": {"x-authkeeper-key": "key-now"}},
				"linear": {"type": "http", "url": "https://mcp.linear.app/mcp"},
				"d": {"type": "http", "url": "https://mcp.example.com/mcp", "headersHelper": "authkeeper headers"},
				"e": {"type": "http", "url": "https://mcp.example.com/mcp", "headersHelper": "/opt/authkeeper headers bench"},
				"f": {"type": "http", "url": "http://localhost:5000/key-now/mcp/my%20srv"},
				"g": {"type": "http", "url": "http://127.0.0.1:5000/mcp/bench"}
			}, "projects": {}}`,
			want: []Finding{
				{Server: "a", Via: ViaProxy, Proxied: "bench"},
				{Server: "b", Via: ViaProxy, Proxied: "bench", Problem: "holds a stale proxy key"},
				{Server: "c", Via: ViaProxy, Proxied: "docs", Problem: "points at port 47615 but the proxy listens on 127.0.0.1:5000"},
				{Server: "d", Via: ViaHeadersHelper, Proxied: "d"},
				{Server: "e", Via: ViaHeadersHelper, Proxied: "bench"},
				{Server: "f", Via: ViaProxy, Proxied: "my srv", Problem: "points at localhost:5000 but the proxy listens on 127.0.0.1:5000"},
				{Server: "g", Via: ViaProxy, Proxied: "bench", Problem: "sends no proxy key (the X-Authkeeper-Key header)"},
			}},
		{name: "claude desktop bridge",
			path: ".config/Claude/claude_desktop_config.json",
			content: `{"mcpServers": {
				"ok": {"command": "` + exe + `", "args": ["bridge", "bench"]},
				"gone": {"command": "/nonexistent/authkeeper", "args": ["bridge", "docs"]},
				"path": {"command": "authkeeper", "args": ["bridge", "docs"]},
				"other": {"command": "npx", "args": ["bridge", "x"]},
				"lean": {"command": "` + lean + `", "args": ["bridge", "bench"]},
				"lean-gone": {"command": "/nonexistent/authkeeper-linux-arm64", "args": ["bridge", "docs"]},
				"lookalike": {"command": "/opt/authkeeper-helper", "args": ["bridge", "docs"]}
			}}`,
			want: []Finding{
				{Server: "ok", Via: ViaBridge, Proxied: "bench", Command: exe},
				{Server: "gone", Via: ViaBridge, Proxied: "docs", Command: "/nonexistent/authkeeper", Problem: "runs /nonexistent/authkeeper, which does not exist"},
				{Server: "path", Via: ViaBridge, Proxied: "docs", Command: "authkeeper"},
				{Server: "lean", Via: ViaBridge, Proxied: "bench", Command: lean},
				{Server: "lean-gone", Via: ViaBridge, Proxied: "docs", Command: "/nonexistent/authkeeper-linux-arm64", Problem: "runs /nonexistent/authkeeper-linux-arm64, which does not exist"},
			}},
		{name: "vscode JSONC with comments and trailing commas",
			path:    ".config/Code/User/mcp.json",
			content: "{\n  // mine\n  \"servers\": {\n    /* proxied */ \"a\": {\"type\": \"http\", " + stale + ",},\n  },\n}\n",
			want:    []Finding{{Server: "a", Via: ViaProxy, Proxied: "bench", Problem: "holds a stale proxy key"}}},
		{name: "copilot malformed", path: ".copilot/mcp-config.json", content: `{"mcpServers": {"a": }`,
			want: []Finding{{Problem: "is not valid JSON: syntax error at line 1, column 20"}}},
		{name: "gemini url is SSE", path: ".gemini/settings.json",
			content: `{"mcpServers": {"a": {"httpUrl": "http://127.0.0.1:5000/mcp/bench", "headers": {"X-Authkeeper-Key": "key-now"}},
				"b": {` + good + `}}}`,
			want: []Finding{
				{Server: "a", Via: ViaProxy, Proxied: "bench"},
				{Server: "b", Via: ViaProxy, Proxied: "bench", Problem: `has the URL under "url", where Gemini CLI expects "httpUrl"`},
			}},
		{name: "codex headers ignored, turned off, stale", path: ".codex/config.toml",
			content: `model = "o3"
# mine
[mcp_servers.a]
url = "http://127.0.0.1:5000/mcp/bench"
http_headers = { "X-Authkeeper-Key" = "key-now" }

[mcp_servers.b]
url = "http://127.0.0.1:5000/mcp/bench"
headers = { "X-Authkeeper-Key" = "key-now" }

[mcp_servers.c]
url = "http://127.0.0.1:5000/mcp/docs"
enabled = false
[mcp_servers.c.http_headers]
X-Authkeeper-Key = "key-old"

[mcp_servers.linear]
url = "https://mcp.linear.app/mcp"
`,
			want: []Finding{
				{Server: "a", Via: ViaProxy, Proxied: "bench"},
				{Server: "b", Via: ViaProxy, Proxied: "bench", Problem: `has the key under "headers", which Codex ignores; it reads "http_headers"`},
				{Server: "c", Via: ViaProxy, Proxied: "docs", Problem: `holds a stale proxy key; is turned off ("enabled": false)`},
			}},
		{name: "codex malformed", path: ".codex/config.toml", content: "[mcp_servers.a\n",
			want: []Finding{{Problem: "is not valid TOML: syntax error at line 2, column 15"}}},
		// The parsers quote what they found: an unquoted key must not reach the Finding (doctor prints it).
		{name: "codex unquoted secret", path: ".codex/config.toml",
			content: "[mcp_servers.a]\nurl = \"http://127.0.0.1:5000/mcp/bench\"\nhttp_headers = { \"X-Authkeeper-Key\" = SECRETKEY123 }\n",
			want:    []Finding{{Problem: "is not valid TOML: syntax error at line 3, column 39"}}},
		{name: "cursor unquoted secret", path: ".cursor/mcp.json",
			content: "{\"mcpServers\": {\"a\": {\"url\": \"http://127.0.0.1:5000/mcp/bench\",\n  \"headers\": {\"X-Authkeeper-Key\": SECRETKEY123}}}}",
			want:    []Finding{{Problem: "is not valid JSON: syntax error at line 2, column 33"}}},
		{name: "opencode both layouts, mcp.servers wins", path: ".config/opencode/opencode.json",
			content: `{"$schema": "https://opencode.ai/config.json", "mcp": {
				"a": {"type": "remote", ` + good + `, "enabled": true},
				"dup": {"type": "remote", ` + stale + `, "enabled": true},
				"servers": {"b": {"type": "remote", ` + good + `, "disabled": true},
					"dup": {"type": "remote", ` + good + `}}}}`,
			want: []Finding{
				{Server: "b", Via: ViaProxy, Proxied: "bench", Problem: `is turned off ("disabled": true)`},
				{Server: "dup", Via: ViaProxy, Proxied: "bench"},
				{Server: "a", Via: ViaProxy, Proxied: "bench"},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			d := Dirs{Home: home, Config: filepath.Join(home, ".config")}
			var path string
			if tc.path != "" {
				path = filepath.Join(home, tc.path)
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var want []Finding
			for _, f := range tc.want {
				f.Path = path
				t, _ := targetByPath(d, path)
				f.Client = t
				want = append(want, f)
			}
			if d := cmp.Diff(want, Audit(d, s)); d != "" {
				t.Errorf("findings (-want +got):\n%s", d)
			}
		})
	}
}

// TestAuditReportsAnUnreadableFile: a config file that exists but cannot be read is a Finding.
func TestAuditReportsAnUnreadableFile(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, ".cursor", "mcp.json")
	if err := os.MkdirAll(path, 0o700); err != nil { // a directory where the file should be
		t.Fatal(err)
	}
	got := Audit(Dirs{Home: home, Config: filepath.Join(home, ".config")}, Setup{ProxyURL: "http://127.0.0.1:5000", Key: "k"})
	want := []Finding{{Client: "cursor", Path: path, Problem: "cannot be read: is a directory"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("findings (-want +got):\n%s", d)
	}
}

func targetByPath(d Dirs, path string) (string, bool) {
	for _, t := range Targets {
		if t.Path(d) == path {
			return t.ID, true
		}
	}
	return "", false
}
