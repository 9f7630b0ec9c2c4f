//go:build linux

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The bridge benchmark drives every path from one client process of its own, neither the owner (this
// test process, where the engine and its proxy run) nor an MCP server: an agent is a process of its
// own, and a client sharing the proxy's Go runtime would spare the HTTP paths the cross-process
// wake-ups that no real agent avoids. That client is this test binary again, re-executed with
// clientEnv=1 (see TestMain): it reads a clientSpec as JSON on stdin, runs it, and writes a
// clientResult as JSON on stdout. Secrets (a bearer token in a header, or in mcp-remote's --header
// argument) travel only on stdin, never in the client's own argv or environment.
const clientEnv = "AUTHKEEPER_BENCH_CLIENT"

// clientJob is what the client process measures.
type clientJob string

const (
	// jobLatency connects every path, warms each up for Warm, then runs Rounds rounds; in each, the
	// paths take turns (forwards in even rounds, backwards in odd ones), each calling echo back to back
	// for Slice. It returns every call's latency by round, and each stdio process's memory at the end.
	jobLatency clientJob = "latency"
	// jobStartup starts each stdio path Runs times, the paths taking turns (forwards in even runs,
	// backwards in odd ones), and times each from just before the process starts to Client.Connect
	// returning, i.e. until the initialize result has arrived (Connect also sends the initialized
	// notification, which waits for no answer).
	jobStartup clientJob = "startup"
	// jobLoad runs Rounds rounds; in each, the paths take turns (forwards, then backwards) at starting
	// Sessions processes at once, all calling echo back to back for Warm and then for Slice. It returns
	// the calls started in Slice, and the summed memory of the processes at the end of it.
	jobLoad clientJob = "load"
	// jobCalls connects the one path, makes Calls calls one after another, closes the session and
	// waits for the process to exit (for a CPU profile or strace's table, written at exit).
	jobCalls clientJob = "calls"
)

// clientSpec is a job for the client process.
type clientSpec struct {
	Job      clientJob     `json:"job"`
	Paths    []pathSpec    `json:"paths"`
	Warm     time.Duration `json:"warm,omitempty"`
	Rounds   int           `json:"rounds,omitempty"`
	Slice    time.Duration `json:"slice,omitempty"`
	Runs     int           `json:"runs,omitempty"`
	Sessions int           `json:"sessions,omitempty"`
	Calls    int           `json:"calls,omitempty"`
}

// pathSpec is one way for the client to reach the server: Streamable HTTP to URL with Headers, or
// stdio to Command run with Args and exactly Env.
type pathSpec struct {
	Name    string            `json:"name"`
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`
	Command string            `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     []string          `json:"env,omitempty"`
}

func (p pathSpec) stdio() bool { return p.Command != "" }

// clientResult is what the client measured, one pathResult per path of the spec, in its order.
type clientResult struct {
	Paths []pathResult `json:"paths"`
}

// pathResult holds what a job measured on one path; each job fills the fields its comment names.
type pathResult struct {
	Name string `json:"name"`
	// Rounds holds every call's latency, by round, unsorted (jobLatency, jobLoad).
	Rounds [][]time.Duration `json:"rounds,omitempty"`
	// RSSKiB and HWMKiB are VmRSS and VmHWM of the stdio process at the end of jobLatency (one value),
	// or their sums over the Sessions processes at the end of each round of jobLoad.
	RSSKiB []int64 `json:"rss_kib,omitempty"`
	HWMKiB []int64 `json:"hwm_kib,omitempty"`
	// Startup holds each run's spawn-to-initialize time (jobStartup).
	Startup []time.Duration `json:"startup,omitempty"`
	// Calls is the number of tools/call requests the process answered (jobCalls).
	Calls int `json:"calls,omitempty"`
}

// runClient runs spec in a client process and returns its result. It fails the test if the client
// fails; the client's stderr (its children's included) is then logged with every secret replaced.
func runClient(t *testing.T, spec clientSpec, secrets ...string) clientResult {
	t.Helper()
	in, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), clientEnv+"=1")
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if err != nil {
		t.Fatalf("client %s: %v\nstderr:\n%s", spec.Job, err, redact(stderr.String(), secrets))
	}
	var res clientResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("client %s: result: %v", spec.Job, err)
	}
	if len(res.Paths) != len(spec.Paths) {
		t.Fatalf("client %s: %d results for %d paths", spec.Job, len(res.Paths), len(spec.Paths))
	}
	return res
}

// redact replaces every secret in s.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}
