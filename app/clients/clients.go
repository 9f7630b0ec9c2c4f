// Package clients reads and writes the agents' MCP config files (Claude Code, Claude Desktop, VS Code,
// Copilot CLI, Cursor, Gemini CLI, Codex, opencode): the entry that points an agent at the proxy,
// merged without touching anything else (JSON, or Codex's TOML line by line), and Audit, which reports
// the entries that point at authkeeper and whether they still agree with its proxy address and key.
package clients

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/authkeeper/authkeeper/app/proxy"
)

// An agent reaches a server through the proxy at its stable address, http://127.0.0.1:47615/mcp/NAME,
// presenting the access key in the X-Authkeeper-Key header. Every client below sends custom headers,
// so the key never has to sit in a URL, except Claude Desktop, whose local config only starts stdio
// servers: it runs `authkeeper bridge NAME`.

// Setup is what a snippet needs: the proxy's stable base URL, its key, and this binary.
type Setup struct {
	ProxyURL string // e.g. http://127.0.0.1:47615
	Key      string
	Exe      string // absolute path of authkeeper, for clients that start it
}

func (s Setup) Endpoint(name string) string { return s.ProxyURL + "/mcp/" + url.PathEscape(name) }

func (s Setup) headers() map[string]string {
	return map[string]string{proxy.ProxyKeyHeader: s.Key}
}

// Target is one MCP client's user-level config file and the shape of a server entry in it.
type Target struct {
	ID      string // the name --write takes
	Title   string
	Section string // the object (TOML: table) holding the servers; dotted when nested ("mcp.servers")
	Format  Format // the file's syntax; default JSON
	// ReadAlso are other sections the client reads servers from, whose entry wins over Section's of
	// the same name (opencode V2's mcp.servers): Audit reads them, --write never writes them.
	ReadAlso []string
	// Note is what a user should know about the client beyond its file ("" for none).
	Note string
	// Path is the user-level config file, from the user's directories.
	Path func(d Dirs) string
	// Entry is the server entry for name; its field order is the order written.
	Entry func(s Setup, name string) any
}

// Entry shapes, fields in the order each client's documentation shows them.
type (
	httpEntry struct {
		Type    string            `json:"type"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	}
	copilotEntry struct {
		Type    string            `json:"type"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
		Tools   []string          `json:"tools"`
	}
	cursorEntry struct {
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	}
	geminiEntry struct {
		HTTPURL string            `json:"httpUrl"`
		Headers map[string]string `json:"headers"`
	}
	codexEntry struct {
		URL         string            `json:"url"`
		HTTPHeaders map[string]string `json:"http_headers"`
	}
	opencodeEntry struct {
		Type    string            `json:"type"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
		Enabled bool              `json:"enabled"`
	}
	stdioEntry struct {
		Command string   `json:"command"`
		Args    []string `json:"args"`
	}
)

// Targets are the supported clients, in the order `authkeeper clients` prints them.
var Targets = []Target{
	{
		// User scope: ~/.claude.json's top-level mcpServers, what `claude mcp add --scope user` writes;
		// $CLAUDE_CONFIG_DIR moves it. (A project's .mcp.json is shared through git: no key there.)
		ID: "claude-code", Title: "Claude Code", Section: "mcpServers",
		Path: func(d Dirs) string {
			if c := d.getenv("CLAUDE_CONFIG_DIR"); c != "" {
				return filepath.Join(c, ".claude.json")
			}
			return filepath.Join(d.Home, ".claude.json")
		},
		Entry: func(s Setup, name string) any {
			return httpEntry{Type: "http", URL: s.Endpoint(name), Headers: s.headers()}
		},
	},
	{
		ID: "claude-desktop", Title: "Claude Desktop", Section: "mcpServers",
		Path: func(d Dirs) string { return filepath.Join(d.Config, "Claude", "claude_desktop_config.json") },
		Entry: func(s Setup, name string) any {
			return stdioEntry{Command: s.Exe, Args: []string{"bridge", name}}
		},
	},
	{
		// The user profile's mcp.json (VS Code 1.102+); a workspace's is .vscode/mcp.json.
		ID: "vscode", Title: "VS Code", Section: "servers",
		Path: func(d Dirs) string { return filepath.Join(d.Config, "Code", "User", "mcp.json") },
		Entry: func(s Setup, name string) any {
			return httpEntry{Type: "http", URL: s.Endpoint(name), Headers: s.headers()}
		},
	},
	{
		// $COPILOT_HOME moves the whole ~/.copilot tree. "tools": ["*"] is required.
		ID: "copilot-cli", Title: "GitHub Copilot CLI", Section: "mcpServers",
		Path: func(d Dirs) string {
			if c := d.getenv("COPILOT_HOME"); c != "" {
				return filepath.Join(c, "mcp-config.json")
			}
			return filepath.Join(d.Home, ".copilot", "mcp-config.json")
		},
		Entry: func(s Setup, name string) any {
			return copilotEntry{Type: "http", URL: s.Endpoint(name), Headers: s.headers(), Tools: []string{"*"}}
		},
	},
	{
		ID: "cursor", Title: "Cursor", Section: "mcpServers",
		Path: func(d Dirs) string { return filepath.Join(d.Home, ".cursor", "mcp.json") },
		Entry: func(s Setup, name string) any {
			return cursorEntry{URL: s.Endpoint(name), Headers: s.headers()}
		},
	},
	{
		// Gemini CLI docs (docs/tools/mcp-server.md, "Configuration Properties"): "`url` (string): SSE
		// endpoint URL", "`httpUrl` (string): HTTP streaming endpoint URL", "`headers` (object): Custom
		// HTTP headers when using `url` or `httpUrl`"; transport selection: "`httpUrl` →
		// StreamableHTTPClientTransport, `url` → SSEClientTransport". The proxy speaks streamable HTTP,
		// so the entry must use httpUrl. User scope: ~/.gemini/settings.json's mcpServers.
		ID: "gemini-cli", Title: "Gemini CLI", Section: "mcpServers",
		Path: func(d Dirs) string { return filepath.Join(d.Home, ".gemini", "settings.json") },
		Entry: func(s Setup, name string) any {
			return geminiEntry{HTTPURL: s.Endpoint(name), Headers: s.headers()}
		},
		// Gemini CLI 0.61, run in a folder not yet trusted: "MCP servers are configured but disabled
		// because this folder is untrusted. User-level servers are also suppressed in untrusted folders".
		Note: "Gemini CLI starts no MCP server, not even these user-level ones, in a folder you have not trusted " +
			"(`gemini mcp list` shows them as Disabled there): trust the folder when Gemini CLI asks.",
	},
	{
		// Codex (codex-rs/config/src/mcp_types.rs, RawMcpServerConfig): a [mcp_servers.NAME] table whose
		// `url` selects streamable HTTP and whose `http_headers` are sent on every request. serde
		// ignores unknown keys there, so a `headers` key (the JSON clients' name) is silently dropped
		// and the proxy answers 403. $CODEX_HOME moves ~/.codex.
		ID: "codex", Title: "Codex", Section: "mcp_servers", Format: FormatTOML,
		Path: func(d Dirs) string {
			if c := d.getenv("CODEX_HOME"); c != "" {
				return filepath.Join(c, "config.toml")
			}
			return filepath.Join(d.Home, ".codex", "config.toml")
		},
		Entry: func(s Setup, name string) any {
			return codexEntry{URL: s.Endpoint(name), HTTPHeaders: s.headers()}
		},
	},
	{
		// opencode (opencode.ai/docs/mcp-servers, V1): servers are members of the config's `mcp`
		// object; a remote one is {"type": "remote", "url", "headers", "enabled"}; the schema allows no
		// other members. opencode V2 documents `mcp.servers.NAME` (with `disabled`) and still reads the
		// `mcp.NAME` form, a `mcp.servers` entry of the same name winning — so authkeeper writes the
		// form both read and audits both. The global config is $XDG_CONFIG_HOME/opencode (default
		// ~/.config/opencode, on every OS: opencode uses xdg-basedir), opencode.json or opencode.jsonc.
		ID: "opencode", Title: "opencode", Section: "mcp", ReadAlso: []string{"mcp.servers"},
		Path: func(d Dirs) string {
			dir := d.getenv("XDG_CONFIG_HOME")
			if dir == "" {
				dir = filepath.Join(d.Home, ".config")
			}
			dir = filepath.Join(dir, "opencode")
			jsonc := filepath.Join(dir, "opencode.jsonc")
			if _, err := os.Stat(filepath.Join(dir, "opencode.json")); os.IsNotExist(err) {
				if _, err := os.Stat(jsonc); err == nil {
					return jsonc
				}
			}
			return filepath.Join(dir, "opencode.json")
		},
		Entry: func(s Setup, name string) any {
			return opencodeEntry{Type: "remote", URL: s.Endpoint(name), Headers: s.headers(), Enabled: true}
		},
	},
}

func TargetByID(id string) (Target, bool) {
	for _, t := range Targets {
		if t.ID == id {
			return t, true
		}
	}
	return Target{}, false
}

// WritesBridge reports whether the target's entries run `authkeeper bridge NAME` (a stdio client),
// rather than pointing at the proxy.
func (t Target) WritesBridge() bool {
	_, ok := t.Entry(Setup{}, "x").(stdioEntry)
	return ok
}

// Entries renders the target's entry for every server name.
func (t Target) Entries(s Setup, names []string) ([]Member, error) {
	out := make([]Member, 0, len(names))
	for _, n := range names {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(t.Entry(s, n)); err != nil {
			return nil, err
		}
		out = append(out, Member{n, bytes.TrimSpace(buf.Bytes())})
	}
	return out, nil
}

// Snippet renders the target's config holding the entries for names and a newline: what `authkeeper
// clients` prints for the target and the tray's "Copy client config" copies, for the user to paste
// into the client's file. JSON: {section: {name: entry, ...}}; TOML: one [section.name] table each.
func (t Target) Snippet(s Setup, names []string) (string, error) {
	entries, err := t.Entries(s, names)
	if err != nil {
		return "", err
	}
	if t.Format == FormatTOML {
		var b strings.Builder
		for i, e := range entries {
			tbl, err := tomlTable(t.Section, e.Key, e.Value)
			if err != nil {
				return "", err
			}
			if i > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(tbl)
		}
		return b.String(), nil
	}
	var inner, out bytes.Buffer
	if err := writeObject(&inner, entries, ""); err != nil {
		return "", err
	}
	if err := writeObject(&out, []Member{{Key: t.Section, Value: inner.Bytes()}}, ""); err != nil {
		return "", err
	}
	out.WriteByte('\n')
	return out.String(), nil
}

// Merge returns the client's file old (nil: none yet) with the entries for names written into it and
// everything else kept (MergeServers, MergeTOMLServers). An error wrapping ErrUnmergeable means the
// file is left for the user to edit by hand.
func (t Target) Merge(old []byte, s Setup, names []string) ([]byte, error) {
	entries, err := t.Entries(s, names)
	if err != nil {
		return nil, err
	}
	if t.Format == FormatTOML {
		return MergeTOMLServers(old, t.Section, entries)
	}
	merged, err := MergeServers(old, t.Section, entries)
	if err != nil {
		return nil, fmt.Errorf("%w: not plain JSON (%v; comments are not supported)", ErrUnmergeable, syntaxError(old, err))
	}
	return merged, nil
}

// Dirs are the directories client configs live in, read from the command's environment so that
// tests can point them at a temporary HOME.
type Dirs struct {
	Home   string // $HOME
	Config string // the OS's per-user config directory, as os.UserConfigDir picks it
	lookup func(string) string
}

// getenv reads the command's environment; a Dirs built as a literal (tests) has none.
func (d Dirs) getenv(k string) string {
	if d.lookup == nil {
		return ""
	}
	return d.lookup(k)
}

func DirsFrom(getenv func(string) string) (Dirs, error) {
	d := Dirs{Home: getenv("HOME"), lookup: getenv}
	if d.Home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return d, err
		}
		d.Home = h
	}
	switch runtime.GOOS {
	case "darwin":
		d.Config = filepath.Join(d.Home, "Library", "Application Support")
	case "windows":
		d.Config = getenv("APPDATA")
	default:
		d.Config = getenv("XDG_CONFIG_HOME")
		if d.Config == "" {
			d.Config = filepath.Join(d.Home, ".config")
		}
	}
	return d, nil
}
