package clients

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Codex's config.toml is the user's, full of other tables and comments, and no Go TOML library writes
// a document back with its comments. So the merge edits lines: it removes the tables that belong to the
// servers being written ([mcp_servers.NAME] and its sub-tables [mcp_servers.NAME.*]), puts the new
// tables where the first of them was (or at the end), and leaves every other line as it was. Then it
// proves the edit with a real parser (BurntSushi/toml): the new file must decode, every value outside
// the written servers must be what it was, and each written server must be exactly its entry. A file
// this cannot prove (a server written as an inline table or dotted keys under [mcp_servers], a table
// header inside a multi-line string, …) is refused and the snippet printed instead.

// ErrUnmergeable means a config file exists in a form authkeeper will not rewrite (comments in JSON, a
// TOML server entry it cannot replace line by line, a file that does not parse).
var ErrUnmergeable = errors.New("cannot be merged safely")

var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// tomlKey renders one key: bare when TOML allows, else a basic string.
func tomlKey(k string) string {
	if bareKey.MatchString(k) {
		return k
	}
	return tomlString(k)
}

// tomlString renders a TOML basic string. JSON's string escapes (\" \\ \n \t \uXXXX …) are all TOML
// basic-string escapes, and JSON escapes every control character TOML forbids raw.
func tomlString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSpace(buf.String())
}

// tomlTable renders [section.name] with the entry's members in order: strings, booleans, string
// arrays and string maps (as inline tables), which is all an entry holds.
func tomlTable(section, name string, entry json.RawMessage) (string, error) {
	members, err := parseObject(entry)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[%s.%s]\n", section, tomlKey(name))
	for _, m := range members {
		v, err := tomlValue(m.Value)
		if err != nil {
			return "", fmt.Errorf("%s: %w", m.Key, err)
		}
		fmt.Fprintf(&b, "%s = %s\n", tomlKey(m.Key), v)
	}
	return b.String(), nil
}

func tomlValue(raw json.RawMessage) (string, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	switch v := v.(type) {
	case string:
		return tomlString(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			s, ok := x.(string)
			if !ok {
				return "", errors.New("only string arrays are supported")
			}
			parts[i] = tomlString(s)
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	case map[string]any:
		members, err := parseObject(raw) // the entry's order, not the map's
		if err != nil {
			return "", err
		}
		parts := make([]string, len(members))
		for i, m := range members {
			var s string
			if err := json.Unmarshal(m.Value, &s); err != nil {
				return "", errors.New("only string maps are supported")
			}
			parts[i] = tomlString(m.Key) + " = " + tomlString(s)
		}
		return "{ " + strings.Join(parts, ", ") + " }", nil
	}
	return "", fmt.Errorf("unsupported value %s", raw)
}

// MergeTOMLServers returns doc with the table [section.NAME] replaced by (or, when absent, followed
// by) each entry, every other line kept byte for byte; the result is checked as described above and
// ErrUnmergeable is returned when it cannot be.
func MergeTOMLServers(doc []byte, section string, entries []Member) ([]byte, error) {
	var before map[string]any
	md, err := toml.Decode(string(doc), &before)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnmergeable, syntaxError(doc, err))
	}
	// Each server's table: the entry, then the keys of the old table it keeps (see transportKeys), in
	// the file's order; sub-tables ([mcp_servers.NAME.env]) come back as inline tables of equal value.
	oldServers, _ := before[section].(map[string]any)
	tables := map[string]string{}
	want := map[string]map[string]any{}
	for _, e := range entries {
		t, err := tomlTable(section, e.Key, e.Value)
		if err != nil {
			return nil, err
		}
		fields, err := toFieldsRaw(e.Value)
		if err != nil {
			return nil, err
		}
		if oldTable, ok := oldServers[e.Key].(map[string]any); ok {
			var order []string
			for _, k := range md.Keys() {
				if len(k) >= 3 && k[0] == section && k[1] == e.Key {
					order = append(order, k[2])
				}
			}
			for _, k := range keptKeys(order, keySet(fields)) {
				v, err := tomlAny(oldTable[k])
				if err != nil {
					return nil, fmt.Errorf("%w: %s.%s.%s cannot be written back (%v)", ErrUnmergeable, section, e.Key, k, err)
				}
				t += tomlKey(k) + " = " + v + "\n"
				fields[k] = oldTable[k]
			}
		}
		tables[e.Key], want[e.Key] = t, fields
	}
	lines := strings.SplitAfter(string(doc), "\n")
	var out strings.Builder
	written := map[string]bool{}
	skipping := false
	inMultiline := false
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		path, isHeader := headerPath(line)
		if inMultiline {
			isHeader = false
		}
		if strings.Count(line, `"""`)%2 == 1 || strings.Count(line, `'''`)%2 == 1 {
			inMultiline = !inMultiline
		}
		if isHeader {
			skipping = false
			if len(path) >= 2 && path[0] == section {
				if t, ours := tables[path[1]]; ours {
					skipping = true
					if !written[path[1]] {
						written[path[1]] = true
						out.WriteString(t)
					}
					continue
				}
			}
		}
		if skipping {
			// Comments and blank lines at the end of a removed table stay: they may introduce the next.
			if onlyTrivia(lines[i:nextHeader(lines, i, inMultiline)]) {
				out.WriteString(line)
			}
			continue
		}
		out.WriteString(line)
	}
	result := out.String()
	for _, e := range entries {
		if written[e.Key] {
			continue
		}
		if result != "" && !strings.HasSuffix(result, "\n") {
			result += "\n"
		}
		if result != "" && !strings.HasSuffix(result, "\n\n") {
			result += "\n"
		}
		result += tables[e.Key]
		written[e.Key] = true
	}
	if err := checkTOMLMerge(before, []byte(result), section, want); err != nil {
		return nil, err
	}
	return []byte(result), nil
}

// checkTOMLMerge proves a line edit: after decodes, holds each want exactly under [section.NAME] (the
// entry and the user's keys kept from the old table), and equals before everywhere else.
func checkTOMLMerge(before map[string]any, after []byte, section string, want map[string]map[string]any) error {
	var got map[string]any
	if _, err := toml.Decode(string(after), &got); err != nil {
		return fmt.Errorf("%w: the edited file does not parse (%v)", ErrUnmergeable, syntaxError(after, err))
	}
	servers, _ := got[section].(map[string]any)
	for name, fields := range want {
		if !sameTOML(fields, servers[name]) {
			return fmt.Errorf("%w: %s.%s would not hold the new entry and the keys kept from the old one", ErrUnmergeable, section, name)
		}
		delete(servers, name)
	}
	if s, _ := before[section].(map[string]any); s != nil {
		for name := range want {
			delete(s, name)
		}
	}
	if len(servers) == 0 {
		delete(got, section)
	}
	if s, ok := before[section].(map[string]any); ok && len(s) == 0 {
		delete(before, section)
	}
	if !sameTOML(before, got) {
		return fmt.Errorf("%w: the edit would change other settings", ErrUnmergeable)
	}
	return nil
}

// sameTOML reports whether two values BurntSushi/toml decoded are the same TOML value: tables and
// arrays element by element; date-times by instant, offset and zone (not by time.Time's fields, which
// hold a *time.Location pointer), so the same instant written with another offset is a change; NaN
// equal to NaN (a file holding `nan` is still that file: go-cmp, used here before, refused it);
// anything else by reflect.DeepEqual, which also tells an integer from a float. A nil table equals an
// empty one: TOML has no way to write the difference.
func sameTOML(a, b any) bool {
	switch a := a.(type) {
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if w, ok := b[k]; !ok || !sameTOML(v, w) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		return ok && sameSlice(a, b)
	case []map[string]any:
		b, ok := b.([]map[string]any)
		return ok && sameSlice(a, b)
	case time.Time:
		b, ok := b.(time.Time)
		an, ao := a.Zone()
		bn, bo := b.Zone()
		return ok && a.Equal(b) && an == bn && ao == bo && a.Location().String() == b.Location().String()
	case float64:
		b, ok := b.(float64)
		return ok && (a == b || math.IsNaN(a) && math.IsNaN(b))
	default:
		return reflect.DeepEqual(a, b)
	}
}

func sameSlice[E any](a, b []E) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameTOML(a[i], b[i]) {
			return false
		}
	}
	return true
}

// toFieldsRaw decodes an entry as TOML decodes a table of it: []any of strings, map[string]any.
func toFieldsRaw(raw json.RawMessage) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// headerPath parses a table header line, "[a.b]" or "[[a.b]]" (an array of tables ends a table too),
// with an optional trailing comment, into its keys.
func headerPath(line string) ([]string, bool) {
	s := strings.TrimSpace(line)
	if !strings.HasPrefix(s, "[") {
		return nil, false
	}
	double := strings.HasPrefix(s, "[[")
	s = strings.TrimPrefix(s, "[")
	if double {
		s = strings.TrimPrefix(s, "[")
	}
	var keys []string
	for {
		s = strings.TrimLeft(s, " \t")
		var k string
		switch {
		case strings.HasPrefix(s, `"`):
			end := closingQuote(s)
			if end < 0 {
				return nil, false
			}
			uq, err := strconv.Unquote(s[:end+1])
			if err != nil {
				return nil, false
			}
			k, s = uq, s[end+1:]
		case strings.HasPrefix(s, "'"):
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				return nil, false
			}
			k, s = s[1:end+1], s[end+2:]
		default:
			end := strings.IndexFunc(s, func(r rune) bool {
				return !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
			})
			if end <= 0 {
				return nil, false
			}
			k, s = s[:end], s[end:]
		}
		keys = append(keys, k)
		s = strings.TrimLeft(s, " \t")
		if strings.HasPrefix(s, ".") {
			s = s[1:]
			continue
		}
		closing := "]"
		if double {
			closing = "]]"
		}
		if !strings.HasPrefix(s, closing) {
			return nil, false
		}
		rest := strings.TrimSpace(s[len(closing):])
		if rest != "" && !strings.HasPrefix(rest, "#") {
			return nil, false
		}
		return keys, true
	}
}

// closingQuote finds the quote that ends the basic string s starts with.
func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

// nextHeader is the index of the first table header at or after i (len(lines): none).
func nextHeader(lines []string, i int, inMultiline bool) int {
	for j := i; j < len(lines); j++ {
		if _, ok := headerPath(lines[j]); ok && !inMultiline {
			return j
		}
	}
	return len(lines)
}

// onlyTrivia reports whether lines are blank or comments.
func onlyTrivia(lines []string) bool {
	for _, l := range lines {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}

func keySet(m map[string]any) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// tomlArray renders an array on one line.
func tomlArray[T any](v []T) (string, error) {
	parts := make([]string, len(v))
	for i, x := range v {
		p, err := tomlAny(x)
		if err != nil {
			return "", err
		}
		parts[i] = p
	}
	return "[" + strings.Join(parts, ", ") + "]", nil
}

// tomlAny renders a value as BurntSushi/toml decodes it (string, bool, int64, float64, time, arrays,
// tables) on one line: tables become inline tables, keys sorted. The caller proves the result.
func tomlAny(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return tomlString(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return "", errors.New("not a finite number")
		}
		f := strconv.FormatFloat(v, 'g', -1, 64)
		if !strings.ContainsAny(f, ".eE") {
			f += ".0"
		}
		return f, nil
	case []any:
		return tomlArray(v)
	case []map[string]any:
		return tomlArray(v)
	case map[string]any:
		if len(v) == 0 {
			return "{}", nil
		}
		parts := make([]string, 0, len(v))
		for _, k := range sortedKeys(v) {
			p, err := tomlAny(v[k])
			if err != nil {
				return "", err
			}
			parts = append(parts, tomlKey(k)+" = "+p)
		}
		return "{ " + strings.Join(parts, ", ") + " }", nil
	}
	return "", fmt.Errorf("a value of type %T", v)
}
