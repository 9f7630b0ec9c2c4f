package bridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// TestBridgeRelaysLinesAsTheyAreAndAnswersBadOnes drives the bridge's stdio side by hand against a
// real Go SDK server: a line that is not JSON-RPC gets a JSON-RPC parse error (id null) and the bridge
// goes on; requests with string and number ids get their answers, each on one line, with the server's
// bytes unchanged; a notification gets no answer.
func TestBridgeRelaysLinesAsTheyAreAndAnswersBadOnes(t *testing.T) {
	d := newDirectServer(t)
	rb := newRawBridge(t, d.url)
	exchange, clientOut := rb.exchange, rb.in
	bad := exchange(`this is not json`)
	if e, _ := bad["error"].(map[string]any); bad["id"] != nil || e == nil || e["code"] != float64(-32700) {
		t.Errorf("answer to a bad line: %v, want a parse error with id null", bad)
	}
	init := exchange(`{"jsonrpc":"2.0","id":"init-1","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	if init["id"] != "init-1" || init["result"] == nil {
		t.Fatalf("initialize answered %v", init)
	}
	if _, err := io.WriteString(clientOut, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"); err != nil {
		t.Fatal(err)
	}
	call := exchange(`{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"echo","arguments":{"text":"two\nlines"}}}`)
	res, _ := call["result"].(map[string]any)
	if call["id"] != float64(41) || res == nil || !bytes.Contains(mustJSON(t, res), []byte(`two\nlines`)) {
		t.Errorf("tools/call answered %v", call)
	}
	rb.end()
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := len(d.requests); n == 0 || d.requests[n-1].Get("Mcp-Session-Id") == "" {
		t.Errorf("the bridge did not end its session (%d requests)", n)
	}
}

// rawBridge is a bridge to the server at url whose stdio side the test drives by hand, line by line.
type rawBridge struct {
	t     *testing.T
	in    io.WriteCloser // the bridge's stdin
	lines *bufio.Reader  // its stdout
	log   *testbed.SyncBuffer
	done  chan error
}

func newRawBridge(t *testing.T, url string) *rawBridge {
	t.Helper()
	clientIn, bridgeOut := io.Pipe()
	bridgeIn, clientOut := io.Pipe()
	rb := &rawBridge{t: t, in: clientOut, lines: bufio.NewReader(clientIn), log: &testbed.SyncBuffer{}, done: make(chan error, 1)}
	br, err := NewBridge(BridgeConfig{Server: "direct", In: bridgeIn, Out: bridgeOut, Log: rb.log,
		Resolve: func(context.Context, bool) (control.ProxyInfo, error) {
			return control.ProxyInfo{URL: url, Key: "k", Receipts: true}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { rb.done <- br.Run(context.Background()) }()
	return rb
}

// exchange writes send as one line and returns the next line the bridge writes, which must be one
// JSON message.
func (rb *rawBridge) exchange(send string) map[string]any {
	t := rb.t
	t.Helper()
	if _, err := io.WriteString(rb.in, send+"\n"); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		l, _ := rb.lines.ReadString('\n')
		got <- l
	}()
	select {
	case l := <-got:
		if strings.Count(l, "\n") != 1 || !strings.HasSuffix(l, "\n") {
			t.Fatalf("answer is not one line: %q", l)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("answer %q: %v", l, err)
		}
		return m
	case <-time.After(20 * time.Second):
		t.Fatalf("no answer to %s\nbridge log:\n%s", send, rb.log)
		return nil
	}
}

// end closes the bridge's stdin and waits for it to end without an error.
func (rb *rawBridge) end() {
	t := rb.t
	t.Helper()
	rb.in.Close()
	select {
	case err := <-rb.done:
		if err != nil {
			t.Errorf("bridge: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the bridge did not end after its input closed")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReadEventFollowsTheEventStreamFormat: the fields of server-sent events as WHATWG defines them —
// data lines joined with newlines, one optional space after the colon, comments and unknown fields
// ignored, CRLF line ends, ids and retry kept — and the end of a stream mid-event.
func TestReadEventFollowsTheEventStreamFormat(t *testing.T) {
	tests := []struct {
		name, in string
		want     []event
	}{
		{"one message", "event: message\ndata: {\"a\":1}\nid: 7\n\n", []event{{name: "message", data: []byte(`{"a":1}`), id: "7", hasID: true}}},
		{"multi-line data, CRLF, no space", "data:{\"a\":\r\ndata: 1}\r\n\r\n", []event{{data: []byte("{\"a\":\n1}")}}},
		{"comment and unknown field", ": ping\nfoo: bar\ndata: x\n\n", []event{{data: []byte("x")}}},
		{"priming event with id only, then retry", "id: 1\ndata:\n\nretry: 250\n\n", []event{{id: "1", hasID: true}, {retry: 250 * time.Millisecond}}},
		{"two events", "data: a\n\ndata: b\n\n", []event{{data: []byte("a")}, {data: []byte("b")}}},
		{"an event type without data ends with its block", "event: ping\n\ndata: x\n\n", []event{{data: []byte("x")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tt.in))
			for i, want := range tt.want {
				got, err := readEvent(r)
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if got.name != want.name || string(got.data) != string(want.data) || got.id != want.id || got.hasID != want.hasID || got.retry != want.retry {
					t.Errorf("event %d = %+v, want %+v", i, got, want)
				}
			}
			if _, err := readEvent(r); err != io.EOF {
				t.Errorf("after the last event: %v, want EOF", err)
			}
		})
	}
}

// TestIDKeyMatchesAnIDHoweverItIsSpelled: the server may re-encode an id; 7, 7.0 and 7e0 answer the
// same call, "7" does not, and an idKey turns back into an equal JSON id.
func TestIDKeyMatchesAnIDHoweverItIsSpelled(t *testing.T) {
	if idKey([]byte("7")) != idKey([]byte("7.0")) || idKey([]byte("7")) != idKey([]byte("7e0")) {
		t.Error("7, 7.0 and 7e0 differ")
	}
	if idKey([]byte("7")) == idKey([]byte(`"7"`)) {
		t.Error(`7 and "7" are the same`)
	}
	for _, id := range []string{`"a\"b"`, "12", "-3", "1.5"} {
		if got := string(rawID(idKey([]byte(id)))); got != id {
			t.Errorf("rawID(idKey(%s)) = %s", id, got)
		}
	}
}

// TestBridgeAnswersManyCallsSentAtOnce: calls that arrive in one write, while earlier ones are still
// on their way, each get their own answer — every message's bytes stay its own while the next lines
// are read — over both ways to the owner.
func TestBridgeAnswersManyCallsSentAtOnce(t *testing.T) {
	for _, receipts := range []bool{true, false} {
		t.Run(fmt.Sprintf("receipts=%v", receipts), func(t *testing.T) {
			d := newDirectServer(t)
			clientIn, bridgeOut := io.Pipe()
			bridgeIn, clientOut := io.Pipe()
			br, err := NewBridge(BridgeConfig{Server: "direct", In: bridgeIn, Out: bridgeOut,
				Resolve: func(context.Context, bool) (control.ProxyInfo, error) {
					return control.ProxyInfo{URL: d.url, Key: "k", Receipts: receipts}, nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- br.Run(context.Background()) }()
			lines := bufio.NewReader(clientIn)
			read := func() map[string]any {
				t.Helper()
				l, err := lines.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("%q: %v", l, err)
				}
				return m
			}
			io.WriteString(clientOut, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`+"\n")
			read()
			var batch strings.Builder
			batch.WriteString(`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n")
			const n = 40
			for i := 1; i <= n; i++ {
				fmt.Fprintf(&batch, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"call %d %s"}}}`+"\n", i, i, strings.Repeat("x", 200*i))
			}
			go io.WriteString(clientOut, batch.String())
			for range n {
				m := read()
				id, _ := m["id"].(float64)
				want := fmt.Sprintf("call %d %s", int(id), strings.Repeat("x", 200*int(id)))
				if !strings.Contains(string(mustJSON(t, m)), want) {
					t.Errorf("answer %v does not echo %q", m, want[:12])
				}
			}
			clientOut.Close()
			if err := <-done; err != nil {
				t.Errorf("bridge: %v", err)
			}
		})
	}
}
