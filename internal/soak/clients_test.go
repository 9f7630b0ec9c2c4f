//go:build soak

package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// outcome is one tool call as an agent saw it.
type outcome struct {
	At        time.Time
	Agent     string // go:SERVER or ts:SERVER
	Tool      string
	Cause     string        // "" when the call succeeded; else auth_failure/<subtype>, proxy_error/<subtype>, …
	Retryable bool          // the proxy's data.retryable, for structured errors
	Left      time.Duration // whoami: validity left on the token the server saw; 0 otherwise
	Message   string        // the error message as the agent got it
}

// tally aggregates outcomes. Safe for concurrent use.
type tally struct {
	mu       sync.Mutex
	calls    int
	byAgent  map[string]int // calls per Agent (go:SERVER, ts:SERVER)
	whoamis  int
	failures map[string]int
	minLeft  time.Duration
	expired  int // whoami answers whose token had no validity left
	messages []string
	log      []outcome // every failure, and every call when keep is set
	keep     bool
}

func newTally(keepAll bool) *tally {
	return &tally{failures: map[string]int{}, byAgent: map[string]int{}, minLeft: time.Duration(math.MaxInt64), keep: keepAll}
}

func (t *tally) add(o outcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls++
	t.byAgent[o.Agent]++
	if o.Tool == "whoami" && o.Cause == "" {
		t.whoamis++
		if o.Left <= 0 {
			t.expired++
		}
		t.minLeft = min(t.minLeft, o.Left)
	}
	if o.Cause != "" {
		t.failures[o.Cause]++
		if o.Message != "" {
			t.messages = append(t.messages, o.Message)
		}
	}
	if o.Cause != "" || t.keep {
		t.log = append(t.log, o)
	}
}

func (t *tally) failed() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, c := range t.failures {
		n += c
	}
	return n
}

// merge adds o's counts and outcomes to t.
func (t *tally) merge(o *tally) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.calls += o.calls
	t.whoamis += o.whoamis
	t.expired += o.expired
	t.minLeft = min(t.minLeft, o.minLeft)
	for k, v := range o.failures {
		t.failures[k] += v
	}
	for k, v := range o.byAgent {
		t.byAgent[k] += v
	}
	t.messages = append(t.messages, o.messages...)
	t.log = append(t.log, o.log...)
}

// outcomes returns a copy of the recorded outcomes.
func (t *tally) outcomes() []outcome {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := append([]outcome(nil), t.log...)
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// goAgent is a Go SDK client session to one server through the proxy.
type goAgent struct {
	server string
	cs     *mcp.ClientSession
	// tools are the tools it cycles through; default echo, add, whoami (the bench's Go and TS servers).
	tools []string
}

// connectGo opens a Go SDK Streamable HTTP session to endpoint (the proxy, key in the path).
func connectGo(t *testing.T, server, endpoint string) *goAgent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := mcp.NewClient(&mcp.Implementation{Name: "soak-" + server, Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint}, nil)
	if err != nil {
		t.Fatalf("connect to %s through the proxy: %v", server, err)
	}
	t.Cleanup(func() { cs.Close() })
	return &goAgent{server: server, cs: cs}
}

// call makes the n-th call of the echo, add, whoami cycle.
func (a *goAgent) call(ctx context.Context, n int) outcome {
	tools := a.tools
	if len(tools) == 0 {
		tools = []string{"echo", "add", "whoami"}
	}
	o := outcome{Agent: "go:" + a.server, Tool: tools[n%len(tools)]}
	args := map[string]any{}
	want := ""
	switch o.Tool {
	case "echo":
		want = fmt.Sprintf("soak-%d", n)
		args["text"] = want
	case "add":
		args["a"], args["b"], want = n, 1, fmt.Sprint(n+1)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := a.cs.CallTool(cctx, &mcp.CallToolParams{Name: o.Tool, Arguments: args})
	o.At = time.Now()
	var wire *jsonrpc.Error
	switch {
	case errors.As(err, &wire):
		var d struct {
			Type, Subtype string
			Retryable     bool
		}
		_ = json.Unmarshal(wire.Data, &d)
		o.Message = wire.Message + " " + string(wire.Data)
		switch wire.Code {
		case proxy.CodeAuthFailure, proxy.CodeProxyError:
			o.Cause, o.Retryable = d.Type+"/"+d.Subtype, d.Retryable
		default:
			o.Cause = fmt.Sprintf("jsonrpc/%d", wire.Code)
		}
	case err != nil:
		o.Cause, o.Message = "transport", err.Error()
	case res.IsError || len(res.Content) != 1:
		o.Cause = "tool_error"
	default:
		tc, _ := res.Content[0].(*mcp.TextContent)
		switch {
		case tc == nil:
			o.Cause = "tool_error"
		case o.Tool == "whoami":
			var w testbed.Whoami
			if json.Unmarshal([]byte(tc.Text), &w) != nil || w.ExpiresAt == 0 {
				o.Cause = "tool_error"
			}
			o.Left = time.Unix(w.ExpiresAt, 0).Sub(o.At)
		case tc.Text != want:
			o.Cause, o.Message = "wrong_answer", tc.Text
		}
	}
	return o
}

// loop calls tools every interval until ctx ends, recording into t. Calls cut short by ctx are not
// recorded.
func (a *goAgent) loop(ctx context.Context, t *tally, interval time.Duration) {
	for n := 0; ctx.Err() == nil; n++ {
		o := a.call(ctx, n)
		if ctx.Err() != nil {
			return
		}
		t.add(o)
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

// tsAgent is the TypeScript SDK's stdio client (node/soak-bridge-client.mjs) running the real
// `authkeeper bridge` for one server.
type tsAgent struct {
	server   string
	proc     *testbed.Process
	stopFile string
}

// startTS starts a TS client session through the bridge that calls tools for d, or until stop.
func startTS(t *testing.T, e *install, server string, d, interval time.Duration) *tsAgent {
	t.Helper()
	node := testbed.NodeDir(t)
	stopFile := filepath.Join(t.TempDir(), "stop")
	cmd := exec.Command("node", filepath.Join(node, "soak-bridge-client.mjs"))
	cmd.Env = append(e.Env(), "AK_BIN="+e.Bin(), "AK_SERVER="+server, "AK_STOP_FILE="+stopFile,
		fmt.Sprintf("AK_SECONDS=%d", int(d.Seconds())), fmt.Sprintf("AK_INTERVAL_MS=%d", interval.Milliseconds()))
	p := testbed.StartProcess(t, "ts client "+server, cmd)
	p.WaitLine(t, `{"event":"connected"`, 60*time.Second)
	return &tsAgent{server: server, proc: p, stopFile: stopFile}
}

// stop asks the client to end after its current call.
func (a *tsAgent) stop(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(a.stopFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// wait waits for the client to print its last line and exit.
func (a *tsAgent) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	a.proc.WaitLine(t, `{"event":"done"`, timeout)
	select {
	case <-a.proc.Done():
	case <-time.After(15 * time.Second):
		t.Errorf("ts client %s did not exit after its last call", a.server)
	}
}

// record parses the client's output into t and returns how many sessions it opened (connected lines).
func (a *tsAgent) record(t *tally) (sessions int) {
	for _, line := range strings.Split(a.proc.Output(), "\n") {
		if !strings.HasPrefix(line, `{"event":`) {
			continue
		}
		var c struct {
			Event, Tool, Error string
			At                 int64
			OK                 bool
			LeftMS             *int64 `json:"left_ms"`
			Data               *struct {
				Type, Subtype string
				Retryable     bool
			}
		}
		if json.Unmarshal([]byte(line), &c) != nil {
			continue
		}
		switch c.Event {
		case "connected":
			sessions++
			continue
		case "call":
		default:
			continue
		}
		o := outcome{At: time.UnixMilli(c.At), Agent: "ts:" + a.server, Tool: c.Tool}
		switch {
		case !c.OK && c.Data != nil && c.Data.Type != "":
			o.Cause, o.Retryable, o.Message = c.Data.Type+"/"+c.Data.Subtype, c.Data.Retryable, c.Error
		case !c.OK:
			o.Cause, o.Message = "client_error", c.Error
		case c.LeftMS != nil:
			o.Left = time.Duration(*c.LeftMS) * time.Millisecond
		}
		t.add(o)
	}
	return sessions
}
