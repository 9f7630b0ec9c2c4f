package bridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/google/go-cmp/cmp"
)

// TestBridgeRelaysLinesAsTheyAreAndAnswersBadOnes drives the bridge's stdio side by hand against a
// real Go SDK server: a line that is not JSON-RPC gets a JSON-RPC parse error (id null) and the bridge
// goes on; requests with string and number ids get their answers, each on one line, with the server's
// bytes unchanged; a notification gets no answer; when the client's input ends, the bridge ends the
// server's session with a DELETE.
func TestBridgeRelaysLinesAsTheyAreAndAnswersBadOnes(t *testing.T) {
	d := newDirectServer(t)
	rb := newRawBridge(t, d.url)
	exchange, clientOut := rb.exchange, rb.in
	bad := exchange(`this is not json`)
	if e, _ := bad["error"].(map[string]any); bad["id"] != nil || e == nil || e["code"] != float64(-32700) {
		t.Errorf("answer to a bad line: %v, want a parse error with id null", bad)
	}
	const initLine = `{"jsonrpc":"2.0","id":"init-1","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	initAnswer := rb.exchangeLine(initLine)
	init := decodeLine(t, initAnswer)
	if init["id"] != "init-1" || init["result"] == nil {
		t.Fatalf("initialize answered %v", init)
	}
	if _, err := io.WriteString(clientOut, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"); err != nil {
		t.Fatal(err)
	}
	const callLine = `{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"echo","arguments":{"text":"two\nlines"}}}`
	callAnswer := rb.exchangeLine(callLine)
	call := decodeLine(t, callAnswer)
	res, _ := call["result"].(map[string]any)
	if call["id"] != float64(41) || res == nil || !bytes.Contains(mustJSON(t, res), []byte(`two\nlines`)) {
		t.Errorf("tools/call answered %v", call)
	}
	for _, c := range []struct{ sent, got string }{{initLine, initAnswer}, {callLine, callAnswer}} {
		if diff := cmp.Diff(d.answerTo(c.sent), []string{strings.TrimSuffix(c.got, "\n")}); diff != "" {
			t.Errorf("the server's answer to %.40s… reached the client changed (-server +client):\n%s", c.sent, diff)
		}
	}
	rb.end()
	d.mu.Lock()
	defer d.mu.Unlock()
	var session string
	var deleted bool
	for _, r := range d.requests {
		if string(r.body) == callLine {
			session = r.Get("Mcp-Session-Id")
		}
	}
	for _, r := range d.requests {
		deleted = deleted || (r.method == http.MethodDelete && session != "" && r.Get("Mcp-Session-Id") == session)
	}
	if !deleted {
		t.Errorf("the bridge did not end its session %q with a DELETE (%d requests)", session, len(d.requests))
	}
}

// answerTo returns the messages the server answered the request whose body was sent with: the data of
// each event of an event stream (the Go SDK writes each on one line), or the whole JSON body.
func (d *directServer) answerTo(sent string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var msgs []string
	for _, r := range d.requests {
		if string(r.body) != sent {
			continue
		}
		if bytes.HasPrefix(r.answer, []byte("{")) || bytes.HasPrefix(r.answer, []byte("[")) {
			msgs = append(msgs, strings.TrimRight(string(r.answer), "\r\n"))
			continue
		}
		for l := range strings.Lines(string(r.answer)) {
			if data, ok := strings.CutPrefix(strings.TrimRight(l, "\r\n"), "data: "); ok {
				msgs = append(msgs, data)
			}
		}
	}
	return msgs
}

// rawBridge is a bridge whose stdio side the test drives by hand, line by line.
type rawBridge struct {
	t     *testing.T
	in    io.WriteCloser // the bridge's stdin
	lines chan string    // its stdout, one line (with its newline) at a time
	log   *testbed.SyncBuffer
	done  chan error
}

// newRawBridge starts a rawBridge to the server at url, an owner that gives receipts.
func newRawBridge(t *testing.T, url string) *rawBridge {
	t.Helper()
	return newRawBridgeWith(t, func(context.Context, bool) (control.ProxyInfo, error) {
		return control.ProxyInfo{URL: url, Key: "k", Receipts: true}, nil
	})
}

// newRawBridgeWith starts a rawBridge that finds its owner with resolve.
func newRawBridgeWith(t *testing.T, resolve func(context.Context, bool) (control.ProxyInfo, error)) *rawBridge {
	t.Helper()
	clientIn, bridgeOut := io.Pipe()
	bridgeIn, clientOut := io.Pipe()
	rb := &rawBridge{t: t, in: clientOut, lines: make(chan string), log: &testbed.SyncBuffer{}, done: make(chan error, 1)}
	br, err := NewBridge(BridgeConfig{Server: "direct", In: bridgeIn, Out: bridgeOut, Log: rb.log, Resolve: resolve})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	go func() {
		r := bufio.NewReader(clientIn)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			select {
			case rb.lines <- l:
			case <-stop:
				return
			}
		}
	}()
	go func() { rb.done <- br.Run(context.Background()) }()
	t.Cleanup(func() { // a test that failed early leaves neither goroutine behind
		close(stop)
		clientOut.Close()
		clientIn.Close()
	})
	return rb
}

// exchange writes send as one line and returns the next line the bridge writes, which must be one
// JSON message.
func (rb *rawBridge) exchange(send string) map[string]any {
	rb.t.Helper()
	return decodeLine(rb.t, rb.exchangeLine(send))
}

// exchangeLine writes send as one line and returns the next line the bridge writes, newline included.
func (rb *rawBridge) exchangeLine(send string) string {
	t := rb.t
	t.Helper()
	if _, err := io.WriteString(rb.in, send+"\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-rb.lines:
		return l
	case <-time.After(20 * time.Second):
		t.Fatalf("no answer to %s\nbridge log:\n%s", send, rb.log)
		return ""
	}
}

// decodeLine decodes one line the bridge wrote, which must be one JSON object.
func decodeLine(t *testing.T, l string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(l), &m); err != nil {
		t.Fatalf("answer %q: %v", l, err)
	}
	return m
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
// on their way, each get their own answer, exactly once — every message's bytes stay its own while the
// next lines are read — over both ways to the owner.
func TestBridgeAnswersManyCallsSentAtOnce(t *testing.T) {
	for _, receipts := range []bool{true, false} {
		t.Run(fmt.Sprintf("receipts=%v", receipts), func(t *testing.T) {
			d := newDirectServer(t)
			rb := newRawBridgeWith(t, func(context.Context, bool) (control.ProxyInfo, error) {
				return control.ProxyInfo{URL: d.url, Key: "k", Receipts: receipts}, nil
			})
			rb.exchange(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
			var batch strings.Builder
			batch.WriteString(`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n")
			const n = 40
			text := func(id int) string { return fmt.Sprintf("call %d %s", id, strings.Repeat("x", 200*id)) }
			for i := 1; i <= n; i++ {
				fmt.Fprintf(&batch, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":%q}}}`+"\n", i, text(i))
			}
			go io.WriteString(rb.in, batch.String())
			answers := make(map[int]int, n) // id → answers to it
			deadline := time.After(30 * time.Second)
			for range n {
				var l string
				select {
				case l = <-rb.lines:
				case <-deadline:
					var missing []int
					for i := 1; i <= n; i++ {
						if answers[i] == 0 {
							missing = append(missing, i)
						}
					}
					t.Fatalf("no answer to calls %v\nbridge log:\n%s", missing, rb.log)
				}
				m := decodeLine(t, l)
				id, ok := m["id"].(float64)
				if !ok || id != float64(int(id)) || id < 1 || id > n {
					t.Errorf("an answer with id %v, want one of the calls 1..%d: %.80s", m["id"], n, l)
					continue
				}
				answers[int(id)]++
				if !strings.Contains(string(mustJSON(t, m)), text(int(id))) {
					t.Errorf("the answer to call %d does not echo its own text: %.80s", int(id), l)
				}
			}
			for i := 1; i <= n; i++ {
				if answers[i] != 1 {
					t.Errorf("call %d got %d answers, want 1", i, answers[i])
				}
			}
			rb.end()
		})
	}
}
