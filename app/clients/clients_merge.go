package clients

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
)

// Client config files belong to the user and to other programs, so writing one follows three rules:
// keep every member we do not own, in its order; never write a file we cannot parse (VS Code allows
// comments in mcp.json: such a file is left alone and the snippet printed instead); and replace the
// file atomically after keeping a timestamped copy of the old one.

// Member is one name/value pair of a JSON object, its value kept byte for byte.
type Member struct {
	Key   string
	Value json.RawMessage
}

var (
	errNotObject = errors.New("not a JSON object")
	errTrailing  = errors.New("trailing data after the JSON object")
)

// parseObject reads a JSON object keeping its members' order. Empty input is an empty object.
func parseObject(data []byte) ([]Member, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		if err != nil {
			return nil, err
		}
		return nil, errNotObject
	}
	var out []Member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, err
		}
		out = append(out, Member{key, val})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errTrailing
	}
	return out, nil
}

// writeObject renders members as an object indented by two spaces, starting at prefix.
func writeObject(buf *bytes.Buffer, members []Member, prefix string) error {
	if len(members) == 0 {
		buf.WriteString("{}")
		return nil
	}
	buf.WriteString("{\n")
	for i, m := range members {
		key, err := json.Marshal(m.Key)
		if err != nil {
			return err
		}
		buf.WriteString(prefix + "  ")
		buf.Write(key)
		buf.WriteString(": ")
		if err := json.Indent(buf, m.Value, prefix+"  ", "  "); err != nil {
			return err
		}
		if i < len(members)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString(prefix + "}")
	return nil
}

// MergeServers returns doc with doc[section][name] = entry for every entry, keeping all other members
// and their order; an entry of an existing name replaces it in place (keeping the user's members of it
// that are not transportKeys: see mergeEntry), a new one goes last.
func MergeServers(doc []byte, section string, entries []Member) ([]byte, error) {
	top, err := parseObject(doc)
	if err != nil {
		return nil, err
	}
	idx := -1
	for i, m := range top {
		if m.Key == section {
			idx = i
		}
	}
	var servers []Member
	if idx >= 0 && string(bytes.TrimSpace(top[idx].Value)) != "null" {
		if servers, err = parseObject(top[idx].Value); err != nil {
			return nil, fmt.Errorf("%q: %w", section, err)
		}
	}
	for _, e := range entries {
		replaced := false
		for i := range servers {
			if servers[i].Key == e.Key {
				v, err := mergeEntry(servers[i].Value, e.Value)
				if err != nil {
					return nil, fmt.Errorf("%q: %w", e.Key, err)
				}
				servers[i].Value, replaced = v, true
			}
		}
		if !replaced {
			servers = append(servers, e)
		}
	}
	var sb bytes.Buffer
	if err := writeObject(&sb, servers, ""); err != nil {
		return nil, err
	}
	if idx >= 0 {
		top[idx].Value = sb.Bytes()
	} else {
		top = append(top, Member{section, sb.Bytes()})
	}
	var out bytes.Buffer
	if err := writeObject(&out, top, ""); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// WriteFileAtomic replaces path with data: a copy of the old file goes to path.authkeeper-backup-TIME
// (returned; "" when there was no file), the new content through keychain.WriteFileAtomic (temporary
// file in the same directory, synced, renamed over the old one, directory synced). A symlinked config
// is written through the link. New files and directories are private: the content holds the proxy's
// access key.
func WriteFileAtomic(path string, data []byte, now time.Time) (backup string, err error) {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	mode := os.FileMode(0o600)
	old, err := os.ReadFile(path)
	switch {
	case err == nil:
		fi, err := os.Stat(path)
		if err != nil {
			return "", err
		}
		// The file will hold the proxy's access key: never readable by other users, whatever it was.
		mode = fi.Mode().Perm() &^ 0o077
		// The backup is created, never overwritten: an earlier backup of the same second is kept.
		stamp := path + ".authkeeper-backup-" + now.UTC().Format("20060102T150405Z")
		backup = stamp
		err = keychain.CreateFileAtomic(backup, old, mode)
		for i := 2; errors.Is(err, os.ErrExist) && i < 100; i++ { // two writes within a second
			backup = fmt.Sprintf("%s-%d", stamp, i)
			err = keychain.CreateFileAtomic(backup, old, mode)
		}
		if err != nil && !errors.Is(err, keychain.ErrNotDurable) { // best effort, as ever: see below
			return "", fmt.Errorf("back up %s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", err
		}
	default:
		return "", err
	}
	// A config directory that cannot be synced still holds the new file: that is reported as success,
	// as it always was; only the config's own directory's durability is at stake, not its content.
	if err := keychain.WriteFileAtomic(path, data, mode); err != nil && !errors.Is(err, keychain.ErrNotDurable) {
		return "", err
	}
	return backup, nil
}
