package clients

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Format is the syntax of a client's config file.
type Format int

const (
	FormatJSON Format = iota // JSON; read as JSONC (comments, trailing commas), written only when plain
	FormatTOML               // TOML (Codex)
)

func (f Format) String() string {
	if f == FormatTOML {
		return "TOML"
	}
	return "JSON"
}

// sectionPath splits a dotted Section ("mcp.servers") into its keys.
func sectionPath(section string) []string { return strings.Split(section, ".") }

// readEntries decodes the server entries of every section t reads, in the file's order, ReadAlso's
// first: of two entries of one name, the one the client uses. Members of a section that are not
// objects are skipped: they are not servers.
func (t Target) readEntries(data []byte) ([]namedEntry, error) {
	sections := append(slices.Clone(t.ReadAlso), t.Section)
	var out []namedEntry
	seen := map[string]bool{}
	add := func(e namedEntry) {
		if !seen[e.Name] {
			seen[e.Name] = true
			out = append(out, e)
		}
	}
	switch t.Format {
	case FormatTOML:
		var doc map[string]any
		md, err := toml.Decode(string(data), &doc)
		if err != nil {
			return nil, err
		}
		for _, sec := range sections {
			path := sectionPath(sec)
			tbl, _ := tableAt(doc, path).(map[string]any)
			for _, k := range md.Keys() { // the file's order
				if len(k) != len(path)+1 || !slices.Equal([]string(k[:len(path)]), path) {
					continue
				}
				if fields, ok := tbl[k[len(path)]].(map[string]any); ok {
					add(namedEntry{k[len(path)], fields})
				}
			}
		}
	default:
		std := standardJSON(data)
		for _, sec := range sections {
			obj := bytes.TrimSpace(std)
			if len(obj) == 0 {
				return nil, nil
			}
			for _, key := range sectionPath(sec) {
				top, err := parseObject(obj)
				if err != nil {
					return nil, err
				}
				obj = nil
				for _, m := range top {
					if m.Key == key {
						obj = m.Value
					}
				}
				if obj == nil || !bytes.HasPrefix(bytes.TrimSpace(obj), []byte("{")) {
					obj = nil
					break
				}
			}
			if obj == nil {
				continue
			}
			members, err := parseObject(obj)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", sec, err)
			}
			for _, m := range members {
				var fields map[string]any
				if json.Unmarshal(m.Value, &fields) == nil && fields != nil {
					add(namedEntry{m.Key, fields})
				}
			}
		}
	}
	return out, nil
}

// tableAt walks nested tables.
func tableAt(doc map[string]any, path []string) any {
	var cur any = doc
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// toFields turns an entry value into the generic form readEntries produces.
func toFields(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// standardJSON turns JSONC into JSON of the same length: comments (// and /* */) and trailing commas
// become spaces, so offsets in errors still point into the user's file. VS Code's mcp.json and
// opencode's opencode.jsonc allow both. Two passes: a trailing comma is found by looking past the
// comments the first pass blanked.
func standardJSON(b []byte) []byte {
	out := slices.Clone(b)
	outsideStrings(out, func(i int) int {
		switch {
		case out[i] == '/' && i+1 < len(out) && out[i+1] == '/':
			for ; i < len(out) && out[i] != '\n'; i++ {
				out[i] = ' '
			}
			return i
		case out[i] == '/' && i+1 < len(out) && out[i+1] == '*':
			stop := len(out)
			if end := bytes.Index(out[i+2:], []byte("*/")); end >= 0 {
				stop = i + 2 + end + 2
			}
			for ; i < stop; i++ {
				if out[i] != '\n' {
					out[i] = ' '
				}
			}
			return i - 1
		}
		return i
	})
	outsideStrings(out, func(i int) int {
		if out[i] != ',' {
			return i
		}
		j := i + 1
		for j < len(out) && (out[j] == ' ' || out[j] == '\t' || out[j] == '\n' || out[j] == '\r') {
			j++
		}
		if j < len(out) && (out[j] == '}' || out[j] == ']') {
			out[i] = ' '
		}
		return i
	})
	return out
}

// outsideStrings calls visit with the index of every byte of b outside a JSON string literal, in
// order; visit returns the index of the last byte it consumed (i itself, or further on).
func outsideStrings(b []byte, visit func(i int) int) {
	inString := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case inString && c == '"':
			inString = false
		case inString:
		case c == '"':
			inString = true
		default:
			i = visit(i)
		}
	}
}
