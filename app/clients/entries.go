package clients

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"

	"github.com/BurntSushi/toml"
)

// transportKeys are the members that say how a client reaches a server (stdio command, HTTP URL,
// headers, auth): authkeeper owns them in an entry it writes, so a replaced entry loses those the new
// entry does not set (an old stdio `command` must not sit next to the new `url`). Every other member
// of the old entry (timeouts, `enabled_tools`, `trust`, …) is the user's and is kept.
var transportKeys = map[string]bool{
	"type": true, "transport": true, "command": true, "args": true, "env": true, "env_vars": true, "cwd": true,
	"url": true, "httpUrl": true, "serverUrl": true, "headers": true, "http_headers": true, "env_http_headers": true,
	"headersHelper": true, "bearer_token_env_var": true,
}

// keptKeys lists, in order, the members of an old entry that a new entry with keys ours keeps.
func keptKeys(old []string, ours map[string]bool) []string {
	var out []string
	for _, k := range old {
		if !ours[k] && !transportKeys[k] && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// mergeEntry returns the JSON entry that replaces old: its members in old's order, the new entry's
// values for the keys it sets (new ones last), the user's other members kept (see transportKeys). An
// old value that is not an object is replaced whole.
func mergeEntry(old, entry json.RawMessage) (json.RawMessage, error) {
	if !bytes.HasPrefix(bytes.TrimSpace(old), []byte("{")) {
		return entry, nil
	}
	oldMembers, err := parseObject(old)
	if err != nil {
		return nil, err
	}
	newMembers, err := parseObject(entry)
	if err != nil {
		return nil, err
	}
	ours := map[string]json.RawMessage{}
	for _, m := range newMembers {
		ours[m.Key] = m.Value
	}
	var out []Member
	done := map[string]bool{}
	for _, m := range oldMembers {
		switch v, ok := ours[m.Key]; {
		case ok && !done[m.Key]:
			out, done[m.Key] = append(out, Member{m.Key, v}), true
		case ok || transportKeys[m.Key]:
		default:
			out = append(out, m)
		}
	}
	for _, m := range newMembers {
		if !done[m.Key] {
			out = append(out, m)
		}
	}
	var buf bytes.Buffer
	if err := writeObject(&buf, out, ""); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Unchanged reports whether merged (what Merge made of old) means the same as old for the entries
// of names in t's section: then nothing needs writing, whatever the two files' formatting (indent,
// key order, trailing newline) — a rewrite would only leave another backup holding the key.
func (t Target) Unchanged(old, merged []byte, names []string) bool {
	if len(bytes.TrimSpace(old)) == 0 {
		return false
	}
	before, err := t.sectionEntries(old, t.Section)
	if err != nil {
		return false
	}
	after, err := t.sectionEntries(merged, t.Section)
	if err != nil {
		return false
	}
	for _, n := range names {
		b, ok := before[n]
		if !ok || !reflect.DeepEqual(b, after[n]) {
			return false
		}
	}
	return true
}

// sectionEntries decodes the object members of one section, by name.
func (t Target) sectionEntries(data []byte, section string) (map[string]map[string]any, error) {
	entries, err := t.withSections([]string{section}).readEntries(data)
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[string]any, len(entries))
	for _, e := range entries {
		out[e.Name] = e.Fields
	}
	return out, nil
}

func (t Target) withSections(sections []string) Target {
	t.Section, t.ReadAlso = sections[len(sections)-1], sections[:len(sections)-1]
	return t
}

// errSyntax is what a parse error of a user's file becomes: where, never the parser's words, which
// quote the file's content (an unquoted key: `expected value but found "SECRET"`).
var errSyntax = errors.New("syntax error")

// syntaxError replaces a JSON or TOML parser's error about data with its position alone.
func syntaxError(data []byte, err error) error {
	var te toml.ParseError
	var tp *toml.ParseError
	var je *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf("%w at line %d, column %d", errSyntax, te.Position.Line, te.Position.Col)
	case errors.As(err, &tp):
		return fmt.Errorf("%w at line %d, column %d", errSyntax, tp.Position.Line, tp.Position.Col)
	case errors.As(err, &je):
		line, col := lineCol(data, je.Offset)
		return fmt.Errorf("%w at line %d, column %d", errSyntax, line, col)
	case errors.Is(err, errNotObject), errors.Is(err, errTrailing):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("%w: the file ends too early", errSyntax)
	}
	return errSyntax
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	if col < 1 {
		col = 1
	}
	return line, col
}

// Replaced names, per written server, the members of its old entry that the merge drops: transport
// keys (see transportKeys) the new entry does not set, such as an old stdio entry's command and env.
// Names only: their values may be secrets. The caller says so, so that nothing goes silently.
func (t Target) Replaced(old []byte, s Setup, names []string) map[string][]string {
	before, err := t.sectionEntries(old, t.Section)
	if err != nil {
		return nil
	}
	out := map[string][]string{}
	for _, n := range names {
		ours, err := toFields(t.Entry(s, n))
		if err != nil {
			continue
		}
		for _, k := range sortedKeys(before[n]) {
			if _, set := ours[k]; transportKeys[k] && !set {
				out[n] = append(out[n], k)
			}
		}
	}
	return out
}
