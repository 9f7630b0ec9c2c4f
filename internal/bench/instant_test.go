//go:build linux

package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
)

// instantEnv makes this test binary an instant stdio server (see TestMain and instantMain).
const instantEnv = "AUTHKEEPER_BENCH_INSTANT"

// instantMain is a minimal stdio MCP server, close to the least one can cost its client: the floor
// under any stdio bridge. For each message it reads, it decodes only the id, the method and the
// requested protocol version, and at once writes a fixed answer in one write. server/discover and
// initialize get the version asked for, with a tools capability; tools/call gets echo's answer to
// "hello"; any other request an empty result; notifications nothing. It returns the exit code when in
// ends.
func instantMain(in io.Reader, out io.Writer) int {
	r := bufio.NewReaderSize(in, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if err == io.EOF {
				return 0
			}
			return 1
		}
		answer, err := instantAnswer(line)
		if err != nil {
			return 1
		}
		if answer == nil {
			continue
		}
		if _, err := out.Write(answer); err != nil {
			return 1
		}
	}
}

// instantMessage is what instantAnswer reads of a message.
type instantMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		ProtocolVersion string `json:"protocolVersion"` // initialize
		Meta            struct {
			ProtocolVersion string `json:"io.modelcontextprotocol/protocolVersion"` // server/discover (SEP-2575)
		} `json:"_meta"`
	} `json:"params"`
}

// instantAnswer returns the line answering one message, nil for a notification.
func instantAnswer(line []byte) ([]byte, error) {
	var m instantMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, err
	}
	if len(m.ID) == 0 || m.Method == "" {
		return nil, nil
	}
	var result string
	switch m.Method {
	case "server/discover", "initialize":
		v := m.Params.ProtocolVersion
		if m.Method == "server/discover" {
			v = m.Params.Meta.ProtocolVersion
		}
		vj, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		result = fmt.Sprintf(`{"protocolVersion":%s,"capabilities":{"tools":{}},"serverInfo":{"name":"instant","version":"1"}}`, vj)
	case "tools/call":
		result = `{"content":[{"type":"text","text":"hello"}]}`
	default:
		result = `{}`
	}
	return fmt.Appendf(nil, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":%s}\n", m.ID, result), nil
}

func TestInstantServerAnswersEachRequestAtOnce(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"discover names the version asked for", `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
			`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2026-07-28","capabilities":{"tools":{}},"serverInfo":{"name":"instant","version":"1"}}}`},
		{"initialize names the version asked for", `{"jsonrpc":"2.0","id":"a","method":"initialize","params":{"protocolVersion":"2025-11-25"}}`,
			`{"jsonrpc":"2.0","id":"a","result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"instant","version":"1"}}}`},
		{"tools/call gets echo's answer", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}`,
			`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hello"}]}}`},
		{"another request gets an empty result", `{"jsonrpc":"2.0","id":8,"method":"ping"}`, `{"jsonrpc":"2.0","id":8,"result":{}}`},
		{"a notification gets nothing", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, ``},
	}
	var in, want strings.Builder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := instantAnswer([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if w := tt.want + "\n"; tt.want == "" && got != nil || tt.want != "" && string(got) != w {
				t.Errorf("answer %q, want %q", got, tt.want)
			}
		})
		in.WriteString(tt.in + "\n")
		if tt.want != "" {
			want.WriteString(tt.want + "\n")
		}
	}
	var out bytes.Buffer
	if code := instantMain(strings.NewReader(in.String()), &out); code != 0 || out.String() != want.String() {
		t.Errorf("instantMain: exit %d, wrote\n%s\nwant\n%s", code, out.String(), want.String())
	}
	if code := instantMain(strings.NewReader("not json\n"), &out); code != 1 {
		t.Errorf("instantMain on a line that is not JSON: exit %d, want 1", code)
	}
}
