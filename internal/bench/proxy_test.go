//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// reportEnv names the file the proxy report is written to; the other benchmarks write theirs (and the
// latency plot) in the same directory. Without it every test runs a short smoke version of each
// measurement and writes nothing (so `go test ./...` stays quick).
const reportEnv = "AUTHKEEPER_BENCH_REPORT"

// proxyPlan is how much TestProxyBenchmark measures.
type proxyPlan struct {
	warm, window time.Duration // per path: the warm-up, then each round's turn
	rounds       int
	floorWindow  time.Duration // the same for the floor (direct, proxied, bare, relay)
	floorRounds  int
	sseSamples   int // first events per path
}

var (
	proxyFull  = proxyPlan{warm: time.Second, window: 2 * time.Second, rounds: 9, floorWindow: time.Second, floorRounds: 5, sseSamples: 200}
	proxySmoke = proxyPlan{warm: 100 * time.Millisecond, window: 200 * time.Millisecond, rounds: 1, floorWindow: 200 * time.Millisecond, floorRounds: 1, sseSamples: 10}
)

// config is one way of calling: the server's answer mode and how many clients call at once.
type config struct {
	mode    string // "json" or "sse"
	clients int
}

func (c config) String() string { return fmt.Sprintf("%s/%d", c.mode, c.clients) }

// profiled reports whether the proxied rounds of c are CPU-profiled for the report.
func (c config) profiled() bool { return c.mode == "json" || c.clients == 1 }

// proxyFocus selects the samples of the proxy's goroutines: the engine labels every goroutine its
// proxy listener starts (connections, handlers, the upstream transport's), see engine.ProfileLabel.
const proxyFocus = engine.ProfileLabel + "=proxy"

// TestProxyBenchmark measures direct and proxied tools/call round trips round by round, the floors a
// bare reverse proxy and a byte relay set, and SSE first events, CPU-profiling the proxied rounds, and writes the
// report when AUTHKEEPER_BENCH_REPORT names a file. It fails if any call fails.
func TestProxyBenchmark(t *testing.T) {
	out := os.Getenv(reportEnv)
	plan := proxySmoke
	if out != "" {
		plan = proxyFull
	}
	e := newEnv(t)
	prof := newCPUProfiles(t.TempDir())
	var pairs []comparison
	for _, mode := range []string{"json", "sse"} {
		for _, clients := range []int{1, 50} {
			c := config{mode, clients}
			p := prof
			if !c.profiled() {
				p = nil
			}
			cmp := e.compare(t, c, []string{viaDirect, viaProxy}, plan.warm, plan.window, plan.rounds, p)
			ratio := cmp.ratios(viaProxy, viaDirect)
			t.Logf("%-7s proxied/direct calls/s %s", c, ratio.format(fmtPct))
			pairs = append(pairs, cmp)
		}
	}
	var floor []comparison
	for _, c := range []config{{"json", 1}, {"sse", 1}, {"json", 50}} {
		cmp := e.compare(t, c, []string{viaDirect, viaProxy, viaBare, viaRelay}, plan.warm, plan.floorWindow, plan.floorRounds, nil)
		t.Logf("%-7s relay/direct calls/s %s", c, cmp.ratios(viaRelay, viaDirect).format(fmtPct))
		floor = append(floor, cmp)
	}
	sseDirect, sseProxy := e.firstEvents(t, plan.sseSamples)
	t.Logf("SSE first event: direct p50 %v p99 %v; proxy p50 %v p99 %v", pct(sseDirect, 50), pct(sseDirect, 99), pct(sseProxy, 50), pct(sseProxy, 99))
	var profiles []profileSummary
	for _, c := range pairs {
		if c.profiled() {
			profiles = append(profiles, proxyProfile(c.config, prof))
		}
	}
	for _, p := range profiles {
		if p.err != nil {
			t.Logf("profile of %s: %v", p.what, p.err)
		} else {
			t.Logf("profile of %s: %.1f%% of samples in %s", p.what, 100*p.share, proxyFocus)
		}
	}
	if out == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, proxyReport(plan, pairs, floor, sseDirect, sseProxy, profiles), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", filepath.Clean(out))
}

// turnOf is one path's turn in a round: every call started in it, sorted.
type turnOf struct {
	lat    []time.Duration
	window time.Duration
}

func (w turnOf) p(q float64) time.Duration { return pct(w.lat, q) }
func (w turnOf) rate() float64             { return float64(len(w.lat)) / w.window.Seconds() }

// comparison is one configuration measured over several paths, round by round.
type comparison struct {
	config
	vias   []string
	rounds []map[string]turnOf // round → path → its turn
}

// compare opens c.clients sessions per path once, warms each path up for warm, then runs rounds rounds
// in which the paths take turns (see turn) for window each. With prof, every turn of every path is
// CPU-profiled, so that the profiler's own cost falls on all paths alike; the report reads only the
// proxied turns.
func (e *env) compare(t *testing.T, c config, vias []string, warm, window time.Duration, rounds int, prof *cpuProfiles) comparison {
	ctx := context.Background()
	sessions := map[string][]*mcp.ClientSession{}
	for _, via := range vias {
		for range c.clients {
			sessions[via] = append(sessions[via], e.session(t, c.mode, via, nil))
		}
		defer closeSessions(t, sessions[via])
	}
	for _, via := range vias {
		if _, err := callWindow(ctx, sessions[via], 0, warm); err != nil {
			t.Fatalf("%s %s warm-up: %v", c, via, err)
		}
	}
	res := comparison{config: c, vias: vias}
	for r := range rounds {
		res.rounds = append(res.rounds, map[string]turnOf{})
		for _, i := range turn(r, len(vias)) {
			via := vias[i]
			var lat []time.Duration
			run := func() (err error) { lat, err = callWindow(ctx, sessions[via], 0, window); return err }
			var err error
			if prof != nil {
				err = prof.during(profileKey(c, via), run)
			} else {
				err = run()
			}
			if err != nil {
				t.Fatalf("%s %s round %d: %v", c, via, r, err)
			}
			slices.Sort(lat)
			res.rounds[r][via] = turnOf{lat: lat, window: window}
		}
	}
	return res
}

func profileKey(c config, via string) string { return fmt.Sprintf("%s-%d-%s", c.mode, c.clients, via) }

// ratios is the spread over rounds of a's calls/s over b's.
func (c comparison) ratios(a, b string) spread {
	return spreadOf(perRound(len(c.rounds), func(r int) float64 { return c.rounds[r][a].rate() / c.rounds[r][b].rate() }))
}

// added is the spread over rounds of a's q-th percentile minus b's, in milliseconds.
func (c comparison) added(a, b string, q float64) spread {
	return spreadOf(perRound(len(c.rounds), func(r int) float64 { return msOf(c.rounds[r][a].p(q) - c.rounds[r][b].p(q)) }))
}

// figure is the spread over rounds of f applied to via's turns.
func (c comparison) figure(via string, f func(turnOf) float64) spread {
	return spreadOf(perRound(len(c.rounds), func(r int) float64 { return f(c.rounds[r][via]) }))
}

// proxyProfile summarises the CPU profiles of c's proxied turns.
func proxyProfile(c config, prof *cpuProfiles) profileSummary {
	s := profileSummary{what: fmt.Sprintf("%s/%d clients, proxied rounds", c.mode, c.clients), share: -1}
	files := prof.files[profileKey(c, viaProxy)]
	if prof.err != nil {
		s.err = fmt.Errorf("profiling failed: %w", prof.err)
		return s
	}
	if len(files) == 0 {
		s.err = errors.New("no proxied turn was profiled")
		return s
	}
	if s.share, s.err = focusShare(proxyFocus, files); s.err != nil {
		return s
	}
	s.excerpt, s.err = pprofTool(append([]string{"-top", "-cum", "-tagfocus=" + proxyFocus, "-nodecount=30"}, files...)...)
	return s
}

// firstEvents measures, n times per path, the time from sending a countdown call to its first
// progress event arriving over the call's SSE response, the paths taking turns call by call.
func (e *env) firstEvents(t *testing.T, n int) (direct, proxied []time.Duration) {
	type path struct {
		cs    *mcp.ClientSession
		first chan time.Time
		lat   []time.Duration
	}
	var paths []*path
	for _, via := range []string{viaDirect, viaProxy} {
		p := &path{first: make(chan time.Time, 1)}
		p.cs = e.session(t, "sse", via, &mcp.ClientOptions{ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
			select {
			case p.first <- time.Now():
			default:
			}
		}})
		defer closeSessions(t, []*mcp.ClientSession{p.cs})
		paths = append(paths, p)
	}
	for i := range n + 10 {
		for _, j := range turn(i, len(paths)) {
			p := paths[j]
			params := &mcp.CallToolParams{Name: "countdown", Arguments: map[string]any{"n": 1, "interval_ms": 0}}
			params.SetProgressToken(fmt.Sprint(i))
			t0 := time.Now()
			if _, err := p.cs.CallTool(context.Background(), params); err != nil {
				t.Fatal(err)
			}
			select {
			case at := <-p.first:
				if i >= 10 { // the first ten warm up
					p.lat = append(p.lat, at.Sub(t0))
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no progress event")
			}
		}
	}
	for _, p := range paths {
		slices.Sort(p.lat)
	}
	return paths[0].lat, paths[1].lat
}
