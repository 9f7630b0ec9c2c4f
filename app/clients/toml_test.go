package clients

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
)

// TestMergeTOMLServersEditsOnlyTheServersTables pins Codex's merge: the [mcp_servers.NAME] table (and
// its sub-tables) is replaced where it stood, a new one is appended, every other line — comments,
// other tables, other servers — is kept byte for byte, a second merge changes nothing, and a file the
// line edit cannot prove (inline or dotted definitions, bad TOML) is refused with ErrUnmergeable.
func TestMergeTOMLServersEditsOnlyTheServersTables(t *testing.T) {
	entry := func(name, key string) Member {
		raw, _ := json.Marshal(codexEntry{URL: Setup{ProxyURL: "http://127.0.0.1:5000"}.Endpoint(name), HTTPHeaders: map[string]string{"X-Authkeeper-Key": key}})
		return Member{Key: name, Value: raw}
	}
	const benchTable = "[mcp_servers.bench]\n" +
		"url = \"http://127.0.0.1:5000/mcp/bench\"\n" +
		"http_headers = { \"X-Authkeeper-Key\" = \"k2\" }\n"
	for _, tc := range []struct {
		name, in, want string
		entries        []Member
		unmergeable    bool
	}{
		{name: "no file", in: "", entries: []Member{entry("bench", "k2")}, want: benchTable},
		{name: "appended after other tables and comments",
			in:      "# my codex\nmodel = \"o3\"  # fast\n\n[profiles.x]\nmodel = \"o4\"\n# trailing comment",
			entries: []Member{entry("bench", "k2")},
			want:    "# my codex\nmodel = \"o3\"  # fast\n\n[profiles.x]\nmodel = \"o4\"\n# trailing comment\n\n" + benchTable},
		{name: "replaced in place with its sub-table, neighbours kept",
			in: "model = \"o3\"\n\n" +
				"[mcp_servers.other]\ncommand = \"npx\"\nargs = [\"-y\", \"x\"]\n\n" +
				"# authkeeper's bench\n[mcp_servers.bench]\nurl = \"http://127.0.0.1:47615/mcp/bench\"\nstartup_timeout_sec = 20\n" +
				"[mcp_servers.bench.http_headers]\nX-Authkeeper-Key = \"k1\"\n\n" +
				"# the next one\n[mcp_servers.zeta]  # z\nurl = \"https://z.example/mcp\"\n",
			entries: []Member{entry("bench", "k2")},
			want: "model = \"o3\"\n\n" +
				"[mcp_servers.other]\ncommand = \"npx\"\nargs = [\"-y\", \"x\"]\n\n" +
				"# authkeeper's bench\n" + benchTable + "startup_timeout_sec = 20\n\n" +
				"# the next one\n[mcp_servers.zeta]  # z\nurl = \"https://z.example/mcp\"\n"},
		{name: "quoted header and a name that needs quotes",
			in:      "[mcp_servers.\"bench\"]\nurl = \"old\"\n\n[other]\na = 1\n",
			entries: []Member{entry("bench", "k2"), entry("my srv", "k2")},
			want: benchTable + "\n[other]\na = 1\n\n" +
				"[mcp_servers.\"my srv\"]\nurl = \"http://127.0.0.1:5000/mcp/my%20srv\"\nhttp_headers = { \"X-Authkeeper-Key\" = \"k2\" }\n"},
		{name: "a header inside a multi-line string is text",
			in:      "notes = \"\"\"\n[mcp_servers.bench]\n\"\"\"\n",
			entries: []Member{entry("bench", "k2")},
			want:    "notes = \"\"\"\n[mcp_servers.bench]\n\"\"\"\n\n" + benchTable},
		{name: "date-times and nan elsewhere are kept", in: "released = 1979-05-27T07:32:00-08:00\nlocal = 1979-05-27T07:32:00\nx = nan\n",
			entries: []Member{entry("bench", "k2")},
			want:    "released = 1979-05-27T07:32:00-08:00\nlocal = 1979-05-27T07:32:00\nx = nan\n\n" + benchTable},
		{name: "inline table under [mcp_servers]", in: "[mcp_servers]\nbench = { url = \"x\" }\n",
			entries: []Member{entry("bench", "k2")}, unmergeable: true},
		{name: "dotted keys", in: "mcp_servers.bench.url = \"x\"\n",
			entries: []Member{entry("bench", "k2")}, unmergeable: true},
		{name: "not TOML", in: "[mcp_servers.bench\n", entries: []Member{entry("bench", "k2")}, unmergeable: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MergeTOMLServers([]byte(tc.in), "mcp_servers", tc.entries)
			if tc.unmergeable {
				if !errors.Is(err, ErrUnmergeable) {
					t.Fatalf("err = %v, want ErrUnmergeable; output:\n%s", err, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, string(got)); d != "" {
				t.Errorf("merged file (-want +got):\n%s", d)
			}
			var doc map[string]any
			if _, err := toml.Decode(string(got), &doc); err != nil {
				t.Fatalf("merged file does not parse: %v", err)
			}
			again, err := MergeTOMLServers(got, "mcp_servers", tc.entries)
			if err != nil || string(again) != string(got) {
				t.Errorf("a second merge changed the file (%v):\n%s", err, again)
			}
		})
	}
}

// TestCodexSnippetIsTheTableItWrites: the printed snippet parses as TOML and holds url and
// http_headers (never `headers`, which Codex ignores).
// TestSameTOMLComparesWhatTOMLSays pins the comparison that proves a merge: two decodes of one
// document are the same (date-times and nan included), and any change TOML can tell is a difference:
// a value, a type, an offset, a key, an element.
func TestSameTOMLComparesWhatTOMLSays(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{a: "t = 1979-05-27T07:32:00-08:00\n[[s]]\nd = 1979-05-27\n[[s]]\nl = 07:32:00", b: "", same: true},
		{a: "x = nan\ny = inf\narr = [1, [2, \"3\"], {k = 1.5}]", b: "", same: true},
		{a: "t = 1979-05-27T07:32:00-08:00", b: "t = 1979-05-27T15:32:00Z"},
		{a: "t = 1979-05-27T07:32:00-08:00", b: "t = 1979-05-27T07:32:01-08:00"},
		{a: "t = 1979-05-27T07:32:00", b: "t = 1979-05-27T07:32:00Z"},
		{a: "n = 1", b: "n = 1.0"},
		{a: "n = nan", b: "n = 1.0"},
		{a: "a = [1, 2]", b: "a = [1, 2, 3]"},
		{a: "a = [1, 2]", b: "a = [2, 1]"},
		{a: "[[s]]\nk = 1\n[[s]]\nk = 2", b: "[[s]]\nk = 1\n[[s]]\nk = 3"},
		{a: "[t]\nk = 1", b: "[t]\nk = 1\nj = 2"},
		{a: "[t]\nk = 1", b: "[u]\nk = 1"},
		{a: "k = \"1\"", b: "k = 1"},
	} {
		b := tc.b
		if b == "" {
			b = tc.a
		}
		var x, y map[string]any
		if _, err := toml.Decode(tc.a, &x); err != nil {
			t.Fatalf("%q: %v", tc.a, err)
		}
		if _, err := toml.Decode(b, &y); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if got := sameTOML(x, y); got != tc.same || sameTOML(y, x) != tc.same {
			t.Errorf("sameTOML(%q, %q) = %v; want %v", tc.a, b, got, tc.same)
		}
	}
}

func TestCodexSnippetIsTheTableItWrites(t *testing.T) {
	tgt, _ := TargetByID("codex")
	snip, err := tgt.Snippet(Setup{ProxyURL: "http://127.0.0.1:5000", Key: "k\"ey"}, []string{"bench", "docs"})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		MCPServers map[string]map[string]any `toml:"mcp_servers"`
	}
	if _, err := toml.Decode(snip, &doc); err != nil {
		t.Fatalf("snippet does not parse: %v\n%s", err, snip)
	}
	want := map[string]any{"url": "http://127.0.0.1:5000/mcp/docs", "http_headers": map[string]any{"X-Authkeeper-Key": "k\"ey"}}
	if d := cmp.Diff(want, doc.MCPServers["docs"]); d != "" || len(doc.MCPServers) != 2 {
		t.Errorf("docs entry (-want +got):\n%s\n%s", d, snip)
	}
}
