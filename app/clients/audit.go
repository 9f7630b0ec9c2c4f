package clients

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/oauth"
)

// Via says how an agent's config entry reaches authkeeper. Code branches on it; the words are Problem's.
type Via int

const (
	ViaProxy         Via = iota + 1 // an HTTP entry at the proxy's loopback URL, path /mcp/NAME or /KEY/mcp/NAME
	ViaBridge                       // a stdio entry that runs `authkeeper bridge NAME`
	ViaHeadersHelper                // Claude Code's headersHelper running `authkeeper headers [NAME]`
)

// Finding is what Audit saw in one agent config file entry that points at authkeeper.
type Finding struct {
	Client  string // Target.ID, e.g. "claude-code"
	Path    string // the config file
	Server  string // the entry's name; "" when the Problem is the file's (unreadable, malformed)
	Problem string // "" when the entry matches s; else plain words: "holds a stale proxy key", "points at port 47615 but the proxy listens on 127.0.0.1:5000", ...
	Via     Via    // how the entry reaches authkeeper; 0 for a file's Problem
	// Proxied is the authkeeper server the entry reaches: NAME of /mcp/NAME or of `bridge NAME`, the
	// headers helper's NAME (default: the entry's name, as Claude Code passes it). A caller checks it
	// against the configured servers; Audit does not know them.
	Proxied string
	// Command is the program a ViaBridge entry runs, as the file names it; "" for the other kinds.
	Command string
}

// Audit reads every target's config file under dirs (a missing file is not an error) and reports each
// server entry that points at an authkeeper proxy (loopback URL with path /mcp/NAME), the bridge or the
// headers helper, and whether it agrees with s (proxy URL, key). Unreadable/malformed files are a
// Finding with a Problem, not an error. Entries that point elsewhere are not reported. Findings come in
// Targets' order, then in the file's order.
func Audit(dirs Dirs, s Setup) []Finding {
	var out []Finding
	for _, t := range Targets {
		path := t.Path(dirs)
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			out = append(out, Finding{Client: t.ID, Path: path, Problem: "cannot be read: " + plainErr(err)})
			continue
		}
		out = append(out, t.AuditData(path, data, s)...)
	}
	return out
}

// AuditData is Audit for one target's file content (read from path): what the client will use after
// a write, for instance.
func (t Target) AuditData(path string, data []byte, s Setup) []Finding {
	entries, err := t.readEntries(data)
	if err != nil {
		return []Finding{{Client: t.ID, Path: path, Problem: fmt.Sprintf("is not valid %s: %v", t.Format, syntaxError(data, err))}}
	}
	var out []Finding
	for _, e := range entries {
		if f, ok := t.audit(e, s); ok {
			f.Client, f.Path = t.ID, path
			out = append(out, f)
		}
	}
	return out
}

// plainErr drops the path os errors repeat: the Finding carries it already.
func plainErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// namedEntry is one server entry of a client's file, decoded generically (JSON or TOML values).
type namedEntry struct {
	Name   string
	Fields map[string]any
}

// audit reports whether e points at authkeeper and, if so, how it disagrees with s.
func (t Target) audit(e namedEntry, s Setup) (Finding, bool) {
	f := Finding{Server: e.Name}
	var problems []string
	switch {
	case proxyRef(e.Fields) != nil:
		ref := proxyRef(e.Fields)
		f.Via, f.Proxied = ViaProxy, ref.name
		problems = t.auditProxy(e.Fields, ref, s)
	case bridgeName(e.Fields) != nil:
		cmd, name := bridgeName(e.Fields)[0], bridgeName(e.Fields)[1]
		f.Via, f.Proxied, f.Command = ViaBridge, name, cmd
		if filepath.IsAbs(cmd) {
			if _, err := os.Stat(cmd); err != nil {
				problems = append(problems, fmt.Sprintf("runs %s, which does not exist", cmd))
			}
		}
	case helperName(e.Fields, e.Name) != "":
		f.Via, f.Proxied = ViaHeadersHelper, helperName(e.Fields, e.Name)
	default:
		return Finding{}, false
	}
	if off := disabled(e.Fields); off != "" {
		problems = append(problems, "is turned off ("+off+")")
	}
	f.Problem = strings.Join(problems, "; ")
	return f, true
}

// proxyURL is an entry's URL that points at an authkeeper proxy.
type proxyURL struct {
	field string   // the entry's member holding it ("url", "httpUrl", …)
	u     *url.URL // the URL
	name  string   // NAME of /mcp/NAME
	key   string   // KEY of /KEY/mcp/NAME; "" when the key is not in the path
}

// proxyRef finds the entry's string member that is a loopback http URL with path [/KEY]/mcp/NAME.
func proxyRef(fields map[string]any) *proxyURL {
	for _, k := range sortedKeys(fields) {
		str, ok := fields[k].(string)
		if !ok {
			continue
		}
		u, err := url.Parse(str)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !oauth.IsLoopbackHost(u.Hostname()) {
			continue
		}
		parts := strings.Split(strings.TrimSuffix(u.EscapedPath(), "/"), "/")
		// "", "mcp", NAME  or  "", KEY, "mcp", NAME
		var key, raw string
		switch {
		case len(parts) == 3 && parts[0] == "" && parts[1] == "mcp":
			raw = parts[2]
		case len(parts) == 4 && parts[0] == "" && parts[2] == "mcp":
			key, raw = parts[1], parts[3]
		default:
			continue
		}
		name, err := url.PathUnescape(raw)
		if err != nil || name == "" {
			continue
		}
		return &proxyURL{field: k, u: u, name: name, key: key}
	}
	return nil
}

// auditProxy compares a proxy entry with what t writes for s: the member names the client reads, the
// proxy's address, and the key.
func (t Target) auditProxy(fields map[string]any, ref *proxyURL, s Setup) []string {
	var problems []string
	wantURLField, wantHeaderField := t.entryFields(s)
	if wantURLField != "" && ref.field != wantURLField {
		problems = append(problems, fmt.Sprintf("has the URL under %q, where %s expects %q", ref.field, t.Title, wantURLField))
	}
	if want, err := url.Parse(s.ProxyURL); err == nil && want.Host != "" && ref.u.Host != want.Host {
		if ref.u.Hostname() == want.Hostname() || (oauth.IsLoopbackHost(ref.u.Hostname()) && ref.u.Port() != want.Port()) {
			problems = append(problems, fmt.Sprintf("points at port %s but the proxy listens on %s", portOf(ref.u), want.Host))
		} else {
			problems = append(problems, fmt.Sprintf("points at %s but the proxy listens on %s", ref.u.Host, want.Host))
		}
	}
	key, keyField := ref.key, ""
	if key == "" {
		key, keyField = headerKey(fields)
	}
	switch {
	case key == "":
		problems = append(problems, "sends no proxy key (the "+proxy.ProxyKeyHeader+" header)")
	case keyField != "" && wantHeaderField != "" && keyField != wantHeaderField:
		problems = append(problems, fmt.Sprintf("has the key under %q, which %s ignores; it reads %q", keyField, t.Title, wantHeaderField))
	}
	if key != "" && s.Key != "" && subtle.ConstantTimeCompare([]byte(key), []byte(s.Key)) != 1 {
		problems = append(problems, "holds a stale proxy key")
	}
	return problems
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// entryFields names the members t's own entry uses for the URL and the headers ("" when it has none).
func (t Target) entryFields(s Setup) (urlField, headerField string) {
	fields, err := toFields(t.Entry(s, "x"))
	if err != nil {
		return "", ""
	}
	for k, v := range fields {
		switch v := v.(type) {
		case string:
			if v == s.Endpoint("x") {
				urlField = k
			}
		case map[string]any:
			if _, ok := v[proxy.ProxyKeyHeader]; ok {
				headerField = k
			}
		}
	}
	return urlField, headerField
}

// headerKey finds an X-Authkeeper-Key header (any case) in any object member of the entry.
func headerKey(fields map[string]any) (key, field string) {
	for _, k := range sortedKeys(fields) {
		m, ok := fields[k].(map[string]any)
		if !ok {
			continue
		}
		for h, v := range m {
			if str, ok := v.(string); ok && strings.EqualFold(h, proxy.ProxyKeyHeader) {
				return str, k
			}
		}
	}
	return "", ""
}

// bridgeName returns [command, NAME] for an entry that runs `authkeeper bridge NAME`: a command
// string with args (most clients) or one command array (opencode's local servers).
func bridgeName(fields map[string]any) []string {
	var argv []string
	switch c := fields["command"].(type) {
	case string:
		argv = append([]string{c}, stringList(fields["args"])...)
	case []any:
		argv = stringList(c)
	}
	if len(argv) < 3 || !isAuthkeeper(argv[0]) || argv[1] != "bridge" {
		return nil
	}
	return []string{argv[0], argv[2]}
}

// helperName returns the server `authkeeper headers [NAME]` asks for when it is the entry's
// headersHelper; Claude Code passes the entry's name in CLAUDE_CODE_MCP_SERVER_NAME.
func helperName(fields map[string]any, entry string) string {
	h, _ := fields["headersHelper"].(string)
	argv := strings.Fields(h)
	if len(argv) < 2 || !isAuthkeeper(strings.Trim(argv[0], `"'`)) || argv[1] != "headers" {
		return ""
	}
	if len(argv) > 2 {
		return strings.Trim(argv[2], `"'`)
	}
	return entry
}

func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil
		}
		out = append(out, s)
	}
	return out
}

// disabled names the member that turns the entry off: "enabled": false (Codex, opencode V1) or
// "disabled": true (opencode V2, Claude Desktop extensions).
func disabled(fields map[string]any) string {
	if v, ok := fields["enabled"].(bool); ok && !v {
		return `"enabled": false`
	}
	if v, ok := fields["disabled"].(bool); ok && v {
		return `"disabled": true`
	}
	return ""
}
