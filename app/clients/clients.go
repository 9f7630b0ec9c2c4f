// Package clients reads and writes the agents' MCP config files (Claude Code, Claude Desktop, Cursor,
// VS Code, …): the entry that points an agent at the proxy, merged without touching anything else.
package clients

import (
	"bytes"
	"encoding/json"
	"github.com/authkeeper/authkeeper/app/proxy"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
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
	Section string // the object holding the servers
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
}

func TargetByID(id string) (Target, bool) {
	for _, t := range Targets {
		if t.ID == id {
			return t, true
		}
	}
	return Target{}, false
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

// Snippet renders the target's config holding the entries for names, {section: {name: entry, ...}}
// and a newline: what `authkeeper clients` prints for the target and the tray's "Copy client config"
// copies, for the user to paste into the client's file.
func (t Target) Snippet(s Setup, names []string) (string, error) {
	entries, err := t.Entries(s, names)
	if err != nil {
		return "", err
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

// Dirs are the directories client configs live in, read from the command's environment so that
// tests can point them at a temporary HOME.
type Dirs struct {
	Home   string // $HOME
	Config string // the OS's per-user config directory, as os.UserConfigDir picks it
	getenv func(string) string
}

func DirsFrom(getenv func(string) string) (Dirs, error) {
	d := Dirs{Home: getenv("HOME"), getenv: getenv}
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
