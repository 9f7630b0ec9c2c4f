package bridge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// directServer is a real Go SDK MCP server (no auth) at /mcp/direct that records every request and
// the bytes of its answer, for testing the bridge's relay without the proxy in between.
type directServer struct {
	url    string
	server *mcp.Server

	mu       sync.Mutex
	requests []*seenRequest
	sessions map[string]bool // Mcp-Session-Id values seen

	// slowCalls receives one value each time a call of the slow tool starts running on the server.
	slowCalls chan struct{}
}

func newDirectServer(t *testing.T) *directServer {
	t.Helper()
	return newDirectServerWith(t, nil)
}

// newDirectServerWith is newDirectServer with the HTTP handler's options (Stateless, say).
func newDirectServerWith(t *testing.T, opts *mcp.StreamableHTTPOptions) *directServer {
	t.Helper()
	d := &directServer{server: mcp.NewServer(&mcp.Implementation{Name: "direct", Version: "1"}, nil), sessions: map[string]bool{},
		slowCalls: make(chan struct{}, 1)}
	type echoIn struct {
		Text string `json:"text"`
	}
	mcp.AddTool(d.server, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	})
	type slowIn struct {
		MS int `json:"ms"`
	}
	mcp.AddTool(d.server, &mcp.Tool{Name: "slow"}, func(ctx context.Context, _ *mcp.CallToolRequest, in slowIn) (*mcp.CallToolResult, any, error) {
		select {
		case d.slowCalls <- struct{}{}:
		default: // nobody is waiting for this one
		}
		select {
		case <-time.After(time.Duration(in.MS) * time.Millisecond):
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "slept"}}}, nil, nil
	})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return d.server }, opts)
	mux := http.NewServeMux()
	mux.HandleFunc("/mcp/direct", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		seen := &seenRequest{Header: r.Header.Clone(), method: r.Method, body: body}
		d.mu.Lock()
		d.requests = append(d.requests, seen)
		if s := r.Header.Get("Mcp-Session-Id"); s != "" {
			d.sessions[s] = true
		}
		d.mu.Unlock()
		h.ServeHTTP(&teeWriter{ResponseWriter: w, mu: &d.mu, to: &seen.answer}, r)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		for ss := range d.server.Sessions() {
			ss.Close()
		}
		srv.Close()
	})
	d.url = srv.URL
	return d
}

// seenRequest is a request the directServer got, and what it answered (guarded by directServer.mu).
type seenRequest struct {
	http.Header
	method string
	body   []byte
	answer []byte // the bytes of the answer's body, as the server wrote them
}

// teeWriter copies what a handler writes to the body of its answer.
type teeWriter struct {
	http.ResponseWriter
	mu *sync.Mutex
	to *[]byte
}

func (w *teeWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	*w.to = append(*w.to, p...)
	w.mu.Unlock()
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController (the SDK flushes its event streams through one) reach w's
// own ResponseWriter.
func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// endSessions closes every session on the server, as a server does when it restarts or expires them:
// the next request with an old session id gets 404.
func (d *directServer) endSessions() {
	for ss := range d.server.Sessions() {
		ss.Close()
	}
}

// startBridge runs a bridge to server name (resolved to base) and connects a Go SDK client to its stdio
// side through pipes. It returns the client session and the bridge's log.
func startBridge(t *testing.T, name string, resolve func(context.Context, bool) (control.ProxyInfo, error)) (*mcp.ClientSession, *testbed.SyncBuffer) {
	t.Helper()
	clientIn, bridgeOut := io.Pipe()
	bridgeIn, clientOut := io.Pipe()
	log := &testbed.SyncBuffer{}
	br, err := NewBridge(BridgeConfig{Server: name, In: bridgeIn, Out: bridgeOut, Resolve: resolve, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	c := mcp.NewClient(&mcp.Implementation{Name: "bridge-test", Version: "1"}, nil)
	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	defer ccancel()
	cs, err := c.Connect(cctx, &mcp.IOTransport{Reader: clientIn, Writer: clientOut}, nil)
	if err != nil {
		cancel()
		t.Fatalf("connect through the bridge: %v\nbridge log:\n%s", err, log)
	}
	t.Cleanup(func() {
		cs.Close()
		clientOut.Close() // EOF on the bridge's stdin ends it
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("bridge: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("bridge did not end after its input closed")
		}
		cancel()
	})
	return cs, log
}

// TestBridgeReopensAnEndedSessionWithoutTheClientNoticing: the server ends its session; a call in
// flight gets an error instead of hanging, and the next call succeeds on a new session that the bridge
// opened by replaying the client's initialize — the client keeps its one session. Every request
// carries the access key in a header, and every request after initialize the negotiated
// Mcp-Protocol-Version.
// Both ways to the owner are covered: with receipts (the bridge's own connections) and without (an
// owner from before receipts: net/http with Expect: 100-continue).
func TestBridgeReopensAnEndedSessionWithoutTheClientNoticing(t *testing.T) {
	for _, receipts := range []bool{true, false} {
		t.Run(fmt.Sprintf("receipts=%v", receipts), func(t *testing.T) { testBridgeReopens(t, receipts) })
	}
}

func testBridgeReopens(t *testing.T, receipts bool) {
	d := newDirectServer(t)
	cs, log := startBridge(t, "direct", func(context.Context, bool) (control.ProxyInfo, error) {
		return control.ProxyInfo{URL: d.url, Key: "the-key", Receipts: receipts}, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	echo := func(text string) error {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
		if err != nil {
			return err
		}
		if got := res.Content[0].(*mcp.TextContent).Text; got != text {
			return fmt.Errorf("echo %q returned %q", text, got)
		}
		return nil
	}
	if err := echo("one"); err != nil {
		t.Fatal(err)
	}

	slow := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "slow", Arguments: map[string]any{"ms": 2000}})
		slow <- err
	}()
	select { // the slow call is running on the server: its session can end under it
	case <-d.slowCalls:
	case err := <-slow:
		t.Fatalf("the slow call ended before it reached the server: %v\nbridge log:\n%s", err, log)
	case <-time.After(10 * time.Second):
		t.Fatalf("the slow call did not reach the server\nbridge log:\n%s", log)
	}
	ended := time.Now()
	d.endSessions()
	select {
	case err := <-slow:
		t.Logf("the call in flight failed %v after its session ended: %v", time.Since(ended).Round(time.Millisecond), err)
		if err == nil {
			t.Error("a call whose session ended succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a call whose session ended got no answer")
	}

	for i := range 3 {
		if err := echo(fmt.Sprintf("after %d", i)); err != nil {
			t.Fatalf("call after the session ended: %v\nbridge log:\n%s", err, log)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.sessions) != 2 {
		t.Errorf("server saw %d sessions, want 2 (the first and the re-opened one)", len(d.sessions))
	}
	for i, h := range d.requests {
		if h.Get(proxy.ProxyKeyHeader) != "the-key" {
			t.Errorf("request %d lacks the access key header", i)
		}
		if i > 0 && h.Get("Mcp-Protocol-Version") == "" && h.Get("Mcp-Session-Id") != "" {
			t.Errorf("request %d after initialize lacks Mcp-Protocol-Version", i)
		}
	}
	if !strings.Contains(log.String(), "opened a new session") {
		t.Errorf("bridge log does not say it re-opened the session:\n%s", log)
	}
}

// TestProxyTransportResendsOnlyWhatTheOldOwnerCannotHaveSeen: when the owner goes away under a bridge,
// a request is sent again to the new owner only if the old one cannot have acted on it — the dial
// failed, or the connection died before any of the body left (the Expect: 100-continue handshake) —
// and never when the old owner had the whole request, so a tool call is never executed twice.
func TestProxyTransportResendsOnlyWhatTheOldOwnerCannotHaveSeen(t *testing.T) {
	const body = `{"jsonrpc":"2.0","id":7,"method":"tools/call"}`
	tests := []struct {
		name string
		// old handles the second request at the old owner (the first warms a kept-alive connection);
		// nil means the old owner is not listening at all.
		old        func(w http.ResponseWriter, r *http.Request)
		wantResent bool
	}{
		{"the old owner is gone before the dial", nil, true},
		{"the old owner dies before reading the body", func(w http.ResponseWriter, r *http.Request) {
			hijackClose(t, w)
		}, true},
		{"the old owner dies after reading the body", func(w http.ResponseWriter, r *http.Request) {
			if b, _ := io.ReadAll(r.Body); string(b) != body {
				t.Errorf("old owner read %q", b)
			}
			hijackClose(t, w)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var newGot []string
			var mu sync.Mutex
			newOwner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				newGot = append(newGot, string(b))
				mu.Unlock()
				if r.Header.Get(proxy.ProxyKeyHeader) != "new-key" {
					t.Errorf("new owner got key %q", r.Header.Get(proxy.ProxyKeyHeader))
				}
				io.WriteString(w, "from the new owner")
			}))
			defer newOwner.Close()
			var oldURL string
			var warmed bool
			if tt.old != nil {
				n := 0
				oldOwner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if n++; n == 1 {
						io.WriteString(w, "warm")
						return
					}
					tt.old(w, r)
				}))
				defer oldOwner.Close()
				oldURL = oldOwner.URL
			} else {
				oldURL = fmt.Sprintf("http://127.0.0.1:%d", testbed.FreePort(t))
			}
			renewals := 0
			rt := &proxyTransport{base: http.DefaultTransport.(*http.Transport).Clone(), resolve: func(_ context.Context, renew bool) (control.ProxyInfo, error) {
				if renew {
					renewals++
					return control.ProxyInfo{URL: newOwner.URL, Key: "new-key"}, nil
				}
				return control.ProxyInfo{URL: oldURL, Key: "old-key"}, nil
			}}
			client := &http.Client{Transport: rt}
			if tt.old != nil { // a kept-alive connection to the old owner, as a running bridge has
				resp, err := client.Post("http://authkeeper/mcp/x", "application/json", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				warmed = true
			}
			resp, err := client.Post("http://authkeeper/mcp/x", "application/json", strings.NewReader(body))
			if tt.wantResent {
				if err != nil {
					t.Fatalf("not resent to the new owner: %v", err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(got) != "from the new owner" || len(newGot) != 1 || newGot[0] != body || renewals != 1 {
					t.Errorf("answer %q, new owner got %q, %d renewals; want the new owner's answer to one copy of the body", got, newGot, renewals)
				}
				return
			}
			if err == nil {
				resp.Body.Close()
				t.Fatalf("a request the old owner had read was answered (status %d): it was replayed", resp.StatusCode)
			}
			if len(newGot) != 0 || !warmed {
				t.Errorf("the new owner got %q: a request the old owner may have acted on was replayed", newGot)
			}
		})
	}
}

// hijackClose drops the connection under an HTTP handler without answering, as a killed process does.
func hijackClose(t *testing.T, w http.ResponseWriter) {
	t.Helper()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	conn.Close()
}
