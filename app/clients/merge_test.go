package clients

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestMergeServersKeepsEveryOtherMemberInOrder pins the merge: other top-level members and other
// servers survive byte for byte in their order, an entry of the same name is replaced in place, a new
// one goes last, and a file that is not plain JSON is refused rather than rewritten.
func TestMergeServersKeepsEveryOtherMemberInOrder(t *testing.T) {
	entry := []Member{{Key: "bench", Value: json.RawMessage(`{"url":"http://127.0.0.1:47615/mcp/bench"}`)}}
	for _, tc := range []struct {
		name, in  string
		wantOrder []string // top-level keys, then the servers' keys
		wantErr   bool
	}{
		{name: "no file", in: "", wantOrder: []string{"mcpServers", "bench"}},
		{name: "others kept in order", in: `{"z":1,"mcpServers":{"gh":{"command":"gh"},"a":{}},"a":[1,{"b":null}]}`,
			wantOrder: []string{"z", "mcpServers", "a", "gh", "a", "bench"}},
		{name: "same name replaced in place", in: `{"mcpServers":{"x":{},"bench":{"url":"old"},"y":{}}}`,
			wantOrder: []string{"mcpServers", "x", "bench", "y"}},
		{name: "null section", in: `{"theme":"dark","mcpServers":null}`, wantOrder: []string{"theme", "mcpServers", "bench"}},
		{name: "section not an object", in: `{"mcpServers":[]}`, wantErr: true},
		{name: "comments", in: "{\n  // mine\n  \"mcpServers\": {}\n}", wantErr: true},
		{name: "trailing comma", in: `{"mcpServers":{},}`, wantErr: true},
		{name: "not an object", in: `[]`, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := MergeServers([]byte(tc.in), "mcpServers", entry)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("merged a file that is not plain JSON into:\n%s", out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			top, err := parseObject(out)
			if err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, out)
			}
			var got []string
			var servers []Member
			for _, m := range top {
				got = append(got, m.Key)
				if m.Key == "mcpServers" {
					servers, _ = parseObject(m.Value)
				}
			}
			for _, m := range servers {
				got = append(got, m.Key)
				if m.Key == "bench" && compactJSON(t, m.Value) != string(entry[0].Value) {
					t.Errorf("bench entry = %s", m.Value)
				}
			}
			if d := cmp.Diff(tc.wantOrder, got); d != "" {
				t.Errorf("member order (-want +got):\n%s", d)
			}
			if tc.in != "" {
				var before, after map[string]any
				_ = json.Unmarshal([]byte(tc.in), &before)
				_ = json.Unmarshal(out, &after)
				delete(before, "mcpServers")
				delete(after, "mcpServers")
				if d := cmp.Diff(before, after); d != "" {
					t.Errorf("unrelated members changed (-before +after):\n%s", d)
				}
			}
		})
	}
}

func compactJSON(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
