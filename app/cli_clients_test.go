package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/google/go-cmp/cmp"
)

// clientsHome points HOME and the authkeeper directories at a temporary home with two configured
// servers and returns the home and the proxy key. Not parallel (t.Setenv).
func clientsHome(t *testing.T) (home, key string) {
	t.Helper()
	home = t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("XDG_STATE_HOME", filepath.Join(home, ".local", "state"))
	t.Setenv("XDG_RUNTIME_DIR", "")
	for _, v := range []string{"CLAUDE_CONFIG_DIR", "COPILOT_HOME", "AUTHKEEPER_PROXY_ADDR"} {
		t.Setenv(v, "")
	}
	dir := filepath.Join(home, ".config", "authkeeper")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := `{"servers":[{"name":"bench","url":"https://mcp.example.com/mcp"},{"name":"docs","url":"https://docs.example.com/mcp"}],"prefs":{"store":"keychain","notifications":true}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := engine.LoadProxyKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	return home, key
}

// TestClientsWriteMergesIntoEachClientsFileWithABackup writes the config of every supported client
// into a temporary HOME: each file lands where the client reads it, holds the proxy endpoint with the
// key in a header (Claude Desktop: the bridge command), keeps the user's other entries and the file's
// mode, and the previous content is kept byte for byte in a backup. A second write is idempotent.
func TestClientsWriteMergesIntoEachClientsFileWithABackup(t *testing.T) {
	home, key := clientsHome(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, _ = filepath.EvalSymlinks(exe)
	httpWant := map[string]any{"type": "http", "url": "http://127.0.0.1:47615/mcp/bench", "headers": map[string]any{"X-Authkeeper-Key": key}}
	for _, tc := range []struct {
		id, path, section string
		want              map[string]any
	}{
		{"claude-code", ".claude.json", "mcpServers", httpWant},
		{"claude-desktop", ".config/Claude/claude_desktop_config.json", "mcpServers",
			map[string]any{"command": exe, "args": []any{"bridge", "bench"}}},
		{"vscode", ".config/Code/User/mcp.json", "servers", httpWant},
		{"copilot-cli", ".copilot/mcp-config.json", "mcpServers",
			map[string]any{"type": "http", "url": "http://127.0.0.1:47615/mcp/bench", "headers": map[string]any{"X-Authkeeper-Key": key}, "tools": []any{"*"}}},
		{"cursor", ".cursor/mcp.json", "mcpServers",
			map[string]any{"url": "http://127.0.0.1:47615/mcp/bench", "headers": map[string]any{"X-Authkeeper-Key": key}}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			path := filepath.Join(home, tc.path)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			orig := `{"userID": "u1", "` + tc.section + `": {"other": {"command": "other-server", "args": ["--flag"]}}, "tail": [1, 2]}`
			if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runCLI(t, "clients", "--write", tc.id, "bench")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]map[string]any
			var doc map[string]any
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Fatalf("written file does not parse: %v\n%s", err, data)
			}
			_ = json.Unmarshal(data, &got)
			if d := cmp.Diff(tc.want, got[tc.section]["bench"]); d != "" {
				t.Errorf("bench entry (-want +got):\n%s", d)
			}
			if d := cmp.Diff(map[string]any{"command": "other-server", "args": []any{"--flag"}}, got[tc.section]["other"]); d != "" {
				t.Errorf("the user's other server changed:\n%s", d)
			}
			if doc["userID"] != "u1" || doc["tail"] == nil {
				t.Errorf("unrelated members lost: %v", doc)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600: the file now holds the access key", fi.Mode().Perm())
			}
			backups, _ := filepath.Glob(path + ".authkeeper-backup-*")
			if len(backups) != 1 || !strings.Contains(stdout, backups[0]) {
				t.Fatalf("backups %v; stdout %q", backups, stdout)
			}
			if b, _ := os.ReadFile(backups[0]); string(b) != orig {
				t.Errorf("backup is not the original file")
			}
			if code, _, stderr := runCLI(t, "clients", "--write", tc.id, "bench"); code != 0 {
				t.Fatalf("second write: exit %d: %s", code, stderr)
			}
			again, _ := os.ReadFile(path)
			if string(again) != string(data) {
				t.Errorf("a second write changed the file:\n%s\nthen\n%s", data, again)
			}
		})
	}
}

// TestClientsWriteCreatesAPrivateFile: a client with no config file gets one, 0600 (it holds the key),
// holding every configured server when no name is given.
func TestClientsWriteCreatesAPrivateFile(t *testing.T) {
	home, _ := clientsHome(t)
	if code, _, stderr := runCLI(t, "clients", "--write", "cursor"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	path := filepath.Join(home, ".cursor", "mcp.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new config has mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	var got struct{ MCPServers map[string]any }
	if err := json.Unmarshal(data, &got); err != nil || len(got.MCPServers) != 2 {
		t.Errorf("want both configured servers, got %s (%v)", data, err)
	}
}

// TestClientsWriteLeavesWhatItCannotParse: a VS Code mcp.json with comments (JSONC) is not rewritten;
// the command exits 1 and prints the snippet to add by hand. --dry-run changes nothing either.
func TestClientsWriteLeavesWhatItCannotParse(t *testing.T) {
	home, _ := clientsHome(t)
	path := filepath.Join(home, ".config", "Code", "User", "mcp.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	jsonc := "{\n  // my servers\n  \"servers\": {},\n}\n"
	if err := os.WriteFile(path, []byte(jsonc), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "clients", "--write", "vscode", "bench")
	if code != 1 || !strings.Contains(stderr, `"servers": {`) || !strings.Contains(stderr, "/mcp/bench") {
		t.Errorf("exit %d, stderr %q: want 1 and the snippet", code, stderr)
	}
	cursor := filepath.Join(home, ".cursor", "mcp.json")
	code, stdout, _ := runCLI(t, "clients", "--write", "cursor", "--dry-run", "bench")
	if code != 0 || !strings.Contains(stdout, "Would write "+cursor) {
		t.Errorf("dry run: exit %d, stdout %q", code, stdout)
	}
	if b, _ := os.ReadFile(path); string(b) != jsonc {
		t.Errorf("the JSONC file was changed")
	}
	if _, err := os.Stat(cursor); !os.IsNotExist(err) {
		t.Errorf("--dry-run wrote %s", cursor)
	}
	if m, _ := filepath.Glob(path + ".authkeeper-backup-*"); len(m) != 0 {
		t.Errorf("backups of an untouched file: %v", m)
	}
}

// TestClientsPrintsEveryClientsSnippet: without --write, every client's file and snippet is printed,
// Claude Code's with the equivalent `claude mcp add` command; an unknown server is refused.
func TestClientsPrintsEveryClientsSnippet(t *testing.T) {
	home, key := clientsHome(t)
	code, stdout, stderr := runCLI(t, "clients", "bench")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"# Claude Code: " + filepath.Join(home, ".claude.json"),
		"claude mcp add --scope user --transport http bench http://127.0.0.1:47615/mcp/bench --header \"X-Authkeeper-Key: " + key + "\"",
		"# Claude Desktop: " + filepath.Join(home, ".config", "Claude", "claude_desktop_config.json"),
		`"bridge",`,
		"# VS Code: " + filepath.Join(home, ".config", "Code", "User", "mcp.json"),
		"# GitHub Copilot CLI: " + filepath.Join(home, ".copilot", "mcp-config.json"),
		"# Cursor: " + filepath.Join(home, ".cursor", "mcp.json"),
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if code, _, stderr := runCLI(t, "clients", "nosuch"); code != 1 || !strings.Contains(stderr, "nosuch") {
		t.Errorf("unknown server: exit %d, %q", code, stderr)
	}
}
