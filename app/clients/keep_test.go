package clients

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
)

// TestMergeKeepsTheUsersOtherKeysOfAnEntry: replacing an entry keeps the members authkeeper does not
// write (timeouts, enabled_tools, env, trust, …) and drops only the transport it replaces (an old
// stdio command, a headers helper); Codex's sub-tables come back as inline tables of the same value.
func TestMergeKeepsTheUsersOtherKeysOfAnEntry(t *testing.T) {
	s := Setup{ProxyURL: "http://127.0.0.1:5000", Key: "k2", Exe: "/usr/bin/authkeeper"}
	t.Run("codex", func(t *testing.T) {
		codex, _ := TargetByID("codex")
		in := "[mcp_servers.bench]\nurl = \"http://127.0.0.1:47615/mcp/bench\"\nstartup_timeout_sec = 20\n" +
			"enabled_tools = [\"search\", \"fetch\"]\ncommand = \"old-stdio\"\n" +
			"[mcp_servers.bench.env]\nFOO = \"bar\"\n[mcp_servers.bench.http_headers]\nX-Authkeeper-Key = \"k1\"\n\n[other]\na = 1\n"
		out, err := codex.Merge([]byte(in), s, []string{"bench"})
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if _, err := toml.Decode(string(out), &got); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		want := map[string]any{
			"url":                 "http://127.0.0.1:5000/mcp/bench",
			"http_headers":        map[string]any{"X-Authkeeper-Key": "k2"},
			"startup_timeout_sec": int64(20),
			"enabled_tools":       []any{"search", "fetch"},
		}
		bench := got["mcp_servers"].(map[string]any)["bench"]
		if d := cmp.Diff(want, bench); d != "" {
			t.Errorf("[mcp_servers.bench] (-want +got):\n%s\nfile:\n%s", d, out)
		}
		if !strings.HasSuffix(string(out), "[other]\na = 1\n") {
			t.Errorf("other tables not kept:\n%s", out)
		}
	})
	t.Run("codex value it cannot write back is refused", func(t *testing.T) {
		codex, _ := TargetByID("codex")
		in := "[mcp_servers.bench]\nurl = \"x\"\nsince = 1979-05-27T07:32:00Z\n"
		if _, err := codex.Merge([]byte(in), s, []string{"bench"}); err == nil || !strings.Contains(err.Error(), "since") {
			t.Errorf("err %v, want ErrUnmergeable naming the key", err)
		}
	})
	t.Run("claude code", func(t *testing.T) {
		cc, _ := TargetByID("claude-code")
		in := `{"mcpServers": {"bench": {"timeout": 30000, "command": "npx", "args": ["x"], "url": "old", "alwaysAllow": ["a"]}}}`
		out, err := cc.Merge([]byte(in), s, []string{"bench"})
		if err != nil {
			t.Fatal(err)
		}
		entries, err := cc.sectionEntries(out, "mcpServers")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"timeout": float64(30000), "alwaysAllow": []any{"a"},
			"type": "http", "url": "http://127.0.0.1:5000/mcp/bench", "headers": map[string]any{"X-Authkeeper-Key": "k2"},
		}
		if d := cmp.Diff(want, entries["bench"]); d != "" {
			t.Errorf("entry (-want +got):\n%s\nfile:\n%s", d, out)
		}
	})
}

// TestUnchangedComparesMeaningNotBytes: a file another program formatted (4-space indent, no
// trailing newline, keys in another order, other members around) that already holds the entry is
// unchanged; a different key is not.
func TestUnchangedComparesMeaningNotBytes(t *testing.T) {
	s := Setup{ProxyURL: "http://127.0.0.1:5000", Key: "k2"}
	for _, tc := range []struct {
		id, in    string
		unchanged bool
	}{
		{"vscode", "{\n    \"theme\": 1,\n    \"servers\": {\n        \"bench\": {\n            \"url\": \"http://127.0.0.1:5000/mcp/bench\",\n" +
			"            \"type\": \"http\",\n            \"headers\": {\"X-Authkeeper-Key\": \"k2\"}\n        },\n        \"x\": {}\n    }\n}", true},
		{"vscode", `{"servers":{"bench":{"type":"http","url":"http://127.0.0.1:5000/mcp/bench","headers":{"X-Authkeeper-Key":"k1"}}}}`, false},
		{"vscode", `{"servers":{}}`, false},
		{"opencode", `{"mcp":{"bench":{"enabled":true,"type":"remote","url":"http://127.0.0.1:5000/mcp/bench","headers":{"X-Authkeeper-Key":"k2"}}}}`, true},
		{"codex", "model = \"o3\"\n[mcp_servers.bench]\nhttp_headers = {\"X-Authkeeper-Key\"=\"k2\"}\nurl='http://127.0.0.1:5000/mcp/bench'", true},
		{"codex", "[mcp_servers.bench]\nurl = \"http://127.0.0.1:5000/mcp/bench\"\n[mcp_servers.bench.http_headers]\nX-Authkeeper-Key = \"k2\"\n", true},
		{"codex", "[mcp_servers.bench]\nurl = \"http://127.0.0.1:5000/mcp/bench\"\n", false},
	} {
		tg, _ := TargetByID(tc.id)
		merged, err := tg.Merge([]byte(tc.in), s, []string{"bench"})
		if err != nil {
			t.Fatalf("%s %q: %v", tc.id, tc.in, err)
		}
		if string(merged) == tc.in {
			t.Fatalf("%s: the merge kept the bytes; the case does not test meaning", tc.id)
		}
		if got := tg.Unchanged([]byte(tc.in), merged, []string{"bench"}); got != tc.unchanged {
			t.Errorf("%s %q: Unchanged = %v, want %v", tc.id, tc.in, got, tc.unchanged)
		}
	}
}
