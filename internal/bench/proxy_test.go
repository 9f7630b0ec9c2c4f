//go:build linux

package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// reportEnv names the file the proxy report is written to; the other benchmarks write theirs (and the
// latency plot) in the same directory. Without it every test runs a short smoke version of each
// measurement and writes nothing (so `go test ./...` stays quick).
const reportEnv = "AUTHKEEPER_BENCH_REPORT"

// TestProxyBenchmark measures direct and proxied tools/call round trips and SSE first events, and
// writes the report when AUTHKEEPER_BENCH_REPORT names a file. It fails if any call fails.
func TestProxyBenchmark(t *testing.T) {
	out := os.Getenv(reportEnv)
	window, warm, sseSamples := 4*time.Second, 500*time.Millisecond, 300
	if out == "" {
		window, warm, sseSamples = 300*time.Millisecond, 100*time.Millisecond, 20
	}
	env := newEnv(t)
	var runs, floor []run
	for _, mode := range []string{"json", "sse"} {
		for _, clients := range []int{1, 50} {
			// Interleaved, so drift on a busy machine hits both paths alike.
			d := env.measure(t, mode, viaDirect, clients, warm, window)
			p := env.measure(t, mode, viaProxy, clients, warm, window)
			runs = append(runs, d, p)
			t.Logf("%s %2d clients: direct p50 %v p99 %v %.0f/s; proxy p50 %v p99 %v %.0f/s", mode, clients,
				d.p(50), d.p(99), d.rate(), p.p(50), p.p(99), p.rate())
			if clients == 1 {
				// The floor, measured next to the pair it explains.
				b := env.measure(t, mode, viaBare, clients, warm, window)
				floor = append(floor, d, p, b)
				t.Logf("%s %2d clients: bare reverse proxy p50 %v %.0f/s", mode, clients, b.p(50), b.rate())
			}
		}
	}
	sseDirect := env.firstEvents(t, viaDirect, sseSamples)
	sseProxy := env.firstEvents(t, viaProxy, sseSamples)
	t.Logf("SSE first event: direct p50 %v p99 %v; proxy p50 %v p99 %v", pct(sseDirect, 50), pct(sseDirect, 99), pct(sseProxy, 50), pct(sseProxy, 99))
	if out == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, report(runs, floor, sseDirect, sseProxy, window), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", filepath.Clean(out))
}

// env is the bench: one engine signed in to a JSON-mode and an SSE-mode Go SDK server.
type env struct {
	eng   *engine.Engine
	as    *testbed.AuthServer
	urls  map[string]string // mode → the server's own URL
	bares map[string]string // mode → the bare reverse proxy's URL (see bare)
	// childEnv is the environment under which a child authkeeper process (the bridge) finds this
	// engine as its owner and the same keyring.
	childEnv []string
}

func newEnv(t *testing.T) *env {
	testbed.StartKeyring(t)
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{})
	browser := testbed.NewBrowser(t, testbed.BrowserOptions{})
	paths, childEnv := homeDirs(t)
	eng, err := engine.New(engine.Config{Paths: paths, ProxyAddr: "127.0.0.1:0", Opener: browser, Proxy: proxy.FrontEnd, Control: control.FrontEnd})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	e := &env{eng: eng, as: as, urls: map[string]string{}, bares: map[string]string{}, childEnv: childEnv}
	for _, mode := range []string{"json", "sse"} {
		srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: as.Issuer, JSONResponse: mode == "json", RequiredScopes: []string{"mcp:read"}})
		if err := eng.Add(context.Background(), engine.AddRequest{Name: mode, URL: srv.URL}); err != nil {
			t.Fatal(err)
		}
		e.urls[mode] = srv.URL
	}
	return e
}

// bearer adds the engine's current token to direct requests, as an agent holding the token would.
type bearer struct {
	eng  *engine.Engine
	name string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := b.eng.Token(r.Context(), b.name)
	if err != nil {
		return nil, err
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return b.base.RoundTrip(r)
}

// Paths a client can take to a server.
const (
	viaDirect = "direct"  // to the server, sending the engine's current token itself
	viaProxy  = "proxied" // through authkeeper's proxy, which adds the token
	viaBare   = "bare"    // through a bare httputil.ReverseProxy that adds the token: the floor
)

// session connects one Go SDK client to mode's server by path via. Every client has its own transport,
// as separate agent processes would.
func (e *env) session(t *testing.T, mode, via string, opts *mcp.ClientOptions) *mcp.ClientSession {
	base := &http.Transport{MaxIdleConnsPerHost: 16, Proxy: nil}
	t.Cleanup(base.CloseIdleConnections)
	tr := &mcp.StreamableClientTransport{Endpoint: e.eng.ProxyEndpoint(mode), HTTPClient: &http.Client{Transport: base}, DisableStandaloneSSE: true}
	switch via {
	case viaDirect:
		tr.Endpoint = e.urls[mode]
		tr.HTTPClient = &http.Client{Transport: bearer{eng: e.eng, name: mode, base: base}}
	case viaBare:
		tr.Endpoint = e.bare(t, mode)
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, opts)
	cs, err := c.Connect(context.Background(), tr, nil)
	if err != nil {
		t.Fatalf("connect %s (%s): %v", mode, via, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// bare starts (once per mode) the floor any proxy in between has to pay: net/http/httputil's
// ReverseProxy on 127.0.0.1, which does nothing but add the engine's token and forward, flushing at
// once (SSE). It returns its URL.
func (e *env) bare(t *testing.T, mode string) string {
	if u, ok := e.bares[mode]; ok {
		return u
	}
	target, err := url.Parse(e.urls[mode])
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			u := *target
			r.Out.URL, r.Out.Host = &u, target.Host
			if tok, err := e.eng.Token(r.In.Context(), mode); err == nil {
				r.Out.Header.Set("Authorization", "Bearer "+tok)
			}
		},
		Transport:     &http.Transport{MaxIdleConnsPerHost: 128, Proxy: nil},
		FlushInterval: -1,
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	e.bares[mode] = srv.URL + "/mcp"
	return e.bares[mode]
}

// run is one measurement: every call's latency inside the window.
type run struct {
	mode    string
	via     string
	clients int
	lat     []time.Duration
	window  time.Duration
}

func (r run) p(q float64) time.Duration { return pct(r.lat, q) }
func (r run) rate() float64             { return float64(len(r.lat)) / r.window.Seconds() }

// measure has clients sessions call echo back to back for warm+window and keeps the calls that
// started inside the window.
func (e *env) measure(t *testing.T, mode, via string, clients int, warm, window time.Duration) run {
	sessions := make([]*mcp.ClientSession, clients)
	for i := range sessions {
		sessions[i] = e.session(t, mode, via, nil)
	}
	start := time.Now()
	from, until := start.Add(warm), start.Add(warm+window)
	var (
		mu     sync.Mutex
		lat    []time.Duration
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	params := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}}
	for _, cs := range sessions {
		wg.Go(func() {
			var mine []time.Duration
			for {
				t0 := time.Now()
				if !t0.Before(until) {
					break
				}
				if _, err := cs.CallTool(context.Background(), params); err != nil {
					failed.Add(1)
					continue
				}
				if t0.After(from) {
					mine = append(mine, time.Since(t0))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%s %s clients=%d: %d calls failed", mode, via, clients, n)
	}
	for _, cs := range sessions {
		cs.Close()
	}
	slices.Sort(lat)
	return run{mode: mode, via: via, clients: clients, lat: lat, window: window}
}

// firstEvents measures, n times, the time from sending a countdown call to its first progress event
// arriving over the call's SSE response.
func (e *env) firstEvents(t *testing.T, via string, n int) []time.Duration {
	first := make(chan time.Time, 1)
	cs := e.session(t, "sse", via, &mcp.ClientOptions{ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
		select {
		case first <- time.Now():
		default:
		}
	}})
	var out []time.Duration
	for i := range n + 10 {
		params := &mcp.CallToolParams{Name: "countdown", Arguments: map[string]any{"n": 1, "interval_ms": 0}}
		params.SetProgressToken(fmt.Sprint(i))
		t0 := time.Now()
		if _, err := cs.CallTool(context.Background(), params); err != nil {
			t.Fatal(err)
		}
		select {
		case at := <-first:
			if i >= 10 { // the first ten warm up
				out = append(out, at.Sub(t0))
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no progress event")
		}
	}
	slices.Sort(out)
	return out
}

// pct returns the q-th percentile of sorted durations (nearest rank).
func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q/100*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
