package app

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
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
	for _, v := range []string{"CLAUDE_CONFIG_DIR", "COPILOT_HOME", "CODEX_HOME", "AUTHKEEPER_PROXY_ADDR"} {
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
// mode, and the previous content is kept byte for byte in a backup. A second write changes nothing,
// says so, and leaves no second backup (another copy of the key on disk).
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
		{"gemini-cli", ".gemini/settings.json", "mcpServers",
			map[string]any{"httpUrl": "http://127.0.0.1:47615/mcp/bench", "headers": map[string]any{"X-Authkeeper-Key": key}}},
		{"opencode", ".config/opencode/opencode.json", "mcp",
			map[string]any{"type": "remote", "url": "http://127.0.0.1:47615/mcp/bench", "headers": map[string]any{"X-Authkeeper-Key": key}, "enabled": true}},
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
			code, stdout, stderr = runCLI(t, "clients", "--write", tc.id, "bench")
			if code != 0 || !strings.Contains(stdout, "unchanged, nothing written") {
				t.Fatalf("second write: exit %d: %s %s", code, stdout, stderr)
			}
			again, _ := os.ReadFile(path)
			if string(again) != string(data) {
				t.Errorf("a second write changed the file:\n%s\nthen\n%s", data, again)
			}
			if b, _ := filepath.Glob(path + ".authkeeper-backup-*"); len(b) != 1 {
				t.Errorf("backups after an unchanged write: %v, want the first one only", b)
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
		"# Gemini CLI: " + filepath.Join(home, ".gemini", "settings.json"),
		`"httpUrl": "http://127.0.0.1:47615/mcp/bench"`,
		"Disabled",
		"# Codex: " + filepath.Join(home, ".codex", "config.toml"),
		"[mcp_servers.bench]\nurl = \"http://127.0.0.1:47615/mcp/bench\"\nhttp_headers = { \"X-Authkeeper-Key\" = \"" + key + "\" }\n",
		"# opencode: " + filepath.Join(home, ".config", "opencode", "opencode.json"),
		`"type": "remote"`,
		"# Proxy: http://127.0.0.1:47615 (no authkeeper is running",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if code, _, stderr := runCLI(t, "clients", "nosuch"); code != 1 || !strings.Contains(stderr, "nosuch") {
		t.Errorf("unknown server: exit %d, %q", code, stderr)
	}
}

// TestClientsWriteCodexKeepsTheUsersTOML: `--write codex` edits ~/.codex/config.toml line by line:
// the user's comments, settings and other servers stay byte for byte, the server's old table (with
// a `headers` key Codex ignores) is replaced by url + http_headers, a second run writes nothing, and
// a file the edit cannot prove is left alone with the snippet printed.
func TestClientsWriteCodexKeepsTheUsersTOML(t *testing.T) {
	home, key := clientsHome(t)
	path := filepath.Join(home, ".codex", "config.toml")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	head := "# my settings\nmodel = \"o3\" # fast\n\n[mcp_servers.other]\ncommand = \"npx\"\nargs = [\"-y\", \"x\"]\n\n"
	tail := "\n# profiles below\n[profiles.deep]\nmodel = \"o4\"\n"
	orig := head + "[mcp_servers.bench]\nurl = \"http://127.0.0.1:47615/mcp/bench\"\nheaders = { \"X-Authkeeper-Key\" = \"old\" }\n" + tail
	if err := os.WriteFile(path, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "clients", "--write", "codex", "bench")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	want := head + "[mcp_servers.bench]\nurl = \"http://127.0.0.1:47615/mcp/bench\"\nhttp_headers = { \"X-Authkeeper-Key\" = \"" + key + "\" }\n" + tail
	if got, _ := os.ReadFile(path); string(got) != want {
		t.Errorf("config.toml (-want +got):\n%s", cmp.Diff(want, string(got)))
	}
	if b, _ := filepath.Glob(path + ".authkeeper-backup-*"); len(b) != 1 {
		t.Errorf("backups %v, want one", b)
	}
	if code, stdout, _ := runCLI(t, "clients", "--write", "codex", "bench"); code != 0 || !strings.Contains(stdout, "unchanged") {
		t.Errorf("second write: exit %d, %q", code, stdout)
	}
	if b, _ := filepath.Glob(path + ".authkeeper-backup-*"); len(b) != 1 {
		t.Errorf("backups after an unchanged write: %v", b)
	}
	inline := "[mcp_servers]\nbench = { url = \"x\" }\n"
	if err := os.WriteFile(path, []byte(inline), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "clients", "--write", "codex", "bench")
	if code != 1 || !strings.Contains(stderr, "[mcp_servers.bench]") || !strings.Contains(stderr, "by hand") {
		t.Errorf("inline definition: exit %d, stderr %q: want 1 and the snippet", code, stderr)
	}
	if got, _ := os.ReadFile(path); string(got) != inline {
		t.Errorf("a file the edit cannot prove was changed:\n%s", got)
	}
}

// TestClientsNamesTheRunningEnginesProxy runs a real `authkeeper serve --proxy-addr 127.0.0.1:0` (a
// free port, not the settings'): `clients` prints and writes that address, and says it is the running
// one's; once it stops, `clients` falls back to the settings' address and says no authkeeper runs.
func TestClientsNamesTheRunningEnginesProxy(t *testing.T) {
	home, key := clientsHome(t)
	rt := shortRuntimeDir(t)
	t.Setenv("XDG_RUNTIME_DIR", rt)
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	// serve picks a free port itself (no listen-close-reuse race) and prints it.
	ctx, cancel := context.WithCancel(context.Background())
	out := &testbed.SyncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"authkeeper", "serve", "--proxy-addr", "127.0.0.1:0", "--store", "file"},
			env{stdout: out, stderr: out, getenv: os.Getenv})
	}()
	stop := func() {
		cancel()
		<-done
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "config:") {
		if time.Now().After(deadline) {
			t.Fatalf("serve printed no addresses within 10s:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m := regexp.MustCompile(`proxy: +http://(127\.0\.0\.1:[0-9]+)/mcp/`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("serve printed no proxy address:\n%s", out)
	}
	addr := m[1]
	url := "http://" + addr
	code, stdout, stderr := runCLI(t, "clients", "bench")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"# Proxy: " + url + " (the running authkeeper's)", `"url": "` + url + `/mcp/bench"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "47615") {
		t.Errorf("output names the default port while the proxy listens on %s:\n%s", addr, stdout)
	}
	if code, _, stderr := runCLI(t, "clients", "--write", "cursor", "bench"); code != 0 {
		t.Fatalf("write: exit %d: %s", code, stderr)
	}
	data, _ := os.ReadFile(filepath.Join(home, ".cursor", "mcp.json"))
	if !strings.Contains(string(data), url+"/mcp/bench") {
		t.Errorf("cursor's file does not name the running proxy %s:\n%s", url, data)
	}
	assertNoSecrets(t, "serve's output", out.String(), key)

	stop()
	stopped = true
	code, stdout, stderr = runCLI(t, "clients", "bench")
	if code != 0 || !strings.Contains(stdout, "# Proxy: http://127.0.0.1:47615 (no authkeeper is running") {
		t.Errorf("with none running: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestClientsWriteWarnsWhenAnotherEntryWins: opencode V2 reads mcp.servers.NAME before mcp.NAME, so
// writing mcp.bench next to a stale mcp.servers.bench would change nothing opencode uses: the write
// says so on stderr.
func TestClientsWriteWarnsWhenAnotherEntryWins(t *testing.T) {
	home, _ := clientsHome(t)
	path := filepath.Join(home, ".config", "opencode", "opencode.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	v2 := `{"mcp": {"servers": {"bench": {"type": "remote", "url": "http://127.0.0.1:47615/mcp/bench", "headers": {"X-Authkeeper-Key": "old"}}}}}`
	if err := os.WriteFile(path, []byte(v2), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "clients", "--write", "opencode", "bench")
	if code != 0 || !strings.Contains(stderr, `warning: opencode's entry "bench" holds a stale proxy key`) {
		t.Errorf("exit %d, stderr %q: want a warning that mcp.servers.bench still wins", code, stderr)
	}
}

// TestClientsWriteLeavesAnEquivalentFileAlone: a file another program wrote in its own format (4-space
// indent, no trailing newline, keys in its order, other members around) that already holds the exact
// entries is not rewritten: no write, no backup holding the key, "unchanged" — for JSON and Codex's TOML.
func TestClientsWriteLeavesAnEquivalentFileAlone(t *testing.T) {
	home, key := clientsHome(t)
	const url = "http://127.0.0.1:47615/mcp/bench"
	for _, tc := range []struct{ id, path, content string }{
		{"vscode", filepath.Join(home, ".config", "Code", "User", "mcp.json"),
			"{\n    \"inputs\": [],\n    \"servers\": {\n        \"bench\": {\n            \"url\": \"" + url + "\",\n" +
				"            \"headers\": {\n                \"X-Authkeeper-Key\": \"" + key + "\"\n            },\n" +
				"            \"type\": \"http\"\n        }\n    }\n}"},
		{"codex", filepath.Join(home, ".codex", "config.toml"),
			"model = \"o3\"\n\n[mcp_servers.bench]\nurl = '" + url + "'\n\n[mcp_servers.bench.http_headers]\n\"X-Authkeeper-Key\" = \"" + key + "\""},
		{"opencode", filepath.Join(home, ".config", "opencode", "opencode.json"),
			`{"$schema":"https://opencode.ai/config.json","mcp":{"bench":{"url":"` + url + `","type":"remote","enabled":true,"headers":{"X-Authkeeper-Key":"` + key + `"}}}}`},
	} {
		if err := os.MkdirAll(filepath.Dir(tc.path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(tc.path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runCLI(t, "clients", "--write", tc.id, "bench")
		if code != 0 || !strings.Contains(stdout, "unchanged, nothing written") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q: want unchanged", tc.id, code, stdout, stderr)
		}
		if got, _ := os.ReadFile(tc.path); string(got) != tc.content {
			t.Errorf("%s: the file was rewritten:\n%s", tc.id, got)
		}
		if b, _ := filepath.Glob(tc.path + ".authkeeper-backup-*"); len(b) != 0 {
			t.Errorf("%s: backups %v, want none", tc.id, b)
		}
	}
}

// TestClientsWriteKeepsTheUsersKeysAndHidesParserText: --write keeps an existing entry's other keys
// (Claude Code's timeout, Codex's startup_timeout_sec and enabled_tools; an old stdio command and env
// are replaced, and the output names them), and refuses a file it cannot
// parse naming the position only, never the parser's words, which quote the content (a key).
func TestClientsWriteKeepsTheUsersKeysAndHidesParserText(t *testing.T) {
	home, key := clientsHome(t)
	cc := filepath.Join(home, ".claude.json")
	if err := os.WriteFile(cc, []byte(`{"mcpServers":{"bench":{"type":"http","url":"http://127.0.0.1:1/mcp/bench","timeout":30000}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, "clients", "--write", "claude-code", "bench"); code != 0 {
		t.Fatalf("claude-code: exit %d: %s", code, stderr)
	}
	if got, _ := os.ReadFile(cc); !strings.Contains(string(got), `"timeout": 30000`) || !strings.Contains(string(got), key) {
		t.Errorf("claude-code's entry lost the user's timeout (or lacks the key):\n%s", got)
	}
	codex := filepath.Join(home, ".codex", "config.toml")
	if err := os.MkdirAll(filepath.Dir(codex), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(codex, []byte("[mcp_servers.bench]\ncommand = \"npx\"\nstartup_timeout_sec = 20\nenabled_tools = [\"search\"]\n[mcp_servers.bench.env]\nFOO = \"bar\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "clients", "--write", "codex", "bench")
	if code != 0 {
		t.Fatalf("codex: exit %d: %s", code, stderr)
	}
	got, _ := os.ReadFile(codex)
	if !strings.Contains(string(got), "startup_timeout_sec = 20") || !strings.Contains(string(got), `enabled_tools = ["search"]`) {
		t.Errorf("codex's table lost the user's keys:\n%s", got)
	}
	// env belongs to a stdio server (Codex documents it for stdio only): replaced, and said so.
	if strings.Contains(string(got), "FOO") || !strings.Contains(stdout, `The old entry "bench"'s command, env belonged to how Codex reached it`) {
		t.Errorf("the old stdio keys: file\n%s\nstdout %q", got, stdout)
	}

	const secret = "SECRETKEY0123456789"
	bad := "[mcp_servers.bench]\nhttp_headers = { \"X-Authkeeper-Key\" = " + secret + " }\n"
	if err := os.WriteFile(codex, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, "clients", "--write", "codex", "bench")
	if code != 1 || !strings.Contains(stderr, "line 2") {
		t.Errorf("unparseable codex file: exit %d, stderr %q: want 1 and the position", code, stderr)
	}
	assertNoSecrets(t, "clients --write output", stdout+stderr, secret)
	code, stdout, stderr = runCLI(t, "doctor")
	assertNoSecrets(t, "doctor output", stdout+stderr, secret)
	if !strings.Contains(stdout+stderr, "syntax error at line 2") {
		t.Errorf("doctor (exit %d) does not name the position:\n%s%s", code, stdout, stderr)
	}
}
