//go:build linux

package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/keychain"
)

// scaleServers is how many servers the scheduler holds (issue 8).
const scaleServers = 1000

// TestSchedulerScaleBenchmark starts the real engine (app.Engine: config file, keepers, scheduler,
// proxy and control listeners, audit log, wake detector) with 1,000 configured servers, each holding a
// 1-hour token pair, and measures the heap the engine keeps for them, the time Start takes to load
// them and plan every refresh, and the process's CPU time over an idle window. The credentials are in
// keychain.MemoryStore: this measures the scheduler, not a Secret Service holding 1,000 items. The
// keepers refresh through the engine's real OAuth client, but nothing is due within the window (the
// first refresh of a 1-hour token comes after about 48 minutes) and the test fails if a refresh starts.
// With AUTHKEEPER_BENCH_REPORT set it writes bench-scale.md next to that file. Run it in a process
// of its own (`make bench` does) so no other test's goroutines share the CPU figure.
func TestSchedulerScaleBenchmark(t *testing.T) {
	out := os.Getenv(reportEnv)
	window := 60 * time.Second
	if out == "" {
		window = time.Second
	}
	paths, _ := homeDirs(t)
	store := keychain.NewMemoryStore(nil)
	settings := keychain.DefaultSettings()
	for i := range scaleServers {
		name, url := fmt.Sprintf("server-%04d", i), fmt.Sprintf("https://mcp-%04d.example.test/mcp", i)
		settings.Servers = append(settings.Servers, keychain.Server{Name: name, URL: url})
		_, err := store.Put(name, keychain.Record{AccessToken: fmt.Sprintf("at-%04d", i), RefreshToken: fmt.Sprintf("rt-%04d", i),
			Expiry: time.Now().Add(time.Hour), TokenType: "Bearer", Binding: keychain.Binding{ServerURL: url, Resource: url,
				Issuer: "http://127.0.0.1:1", TokenEndpoint: "http://127.0.0.1:1/token", ClientID: "bench", AuthMethod: "none"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	conf, err := keychain.NewConfigFile(paths.ConfigDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := conf.Save(settings); err != nil {
		t.Fatal(err)
	}

	before := heap()
	goroutines := runtime.NumGoroutine()
	t0 := time.Now()
	eng, err := engine.New(engine.Config{Paths: paths, ProxyAddr: "127.0.0.1:0", Store: store, Proxy: proxy.FrontEnd, Control: control.FrontEnd})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	res := scaleResult{start: time.Since(t0)}
	t.Cleanup(func() { eng.Close() })
	res.heap = heap() - before
	res.goroutines = runtime.NumGoroutine() - goroutines
	first, last := planned(t, eng)
	res.first, res.last = first.Sub(t0), last.Sub(t0)

	// No settling wait: start-up work is over when Start returns (it plans synchronously), and the GC
	// that heap() forced is behind us.
	self := os.Getpid()
	res.idle = observeIdle(t, "engine with 1,000 servers (this process)", self, selfCPU, window)
	res.heapAfter = heap() - before
	planned(t, eng) // and still nothing refreshed
	t.Logf("1,000 servers: Start %v, heap %s, +%d goroutines; idle %.3f%% of a core = %v CPU per hour",
		res.start, mib(int64(res.heap/1024)), res.goroutines, res.idle.core(), res.perHour())
	if out == "" {
		return
	}
	dir := filepath.Dir(out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bench-scale.md"), scaleReport(res), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", filepath.Join(dir, "bench-scale.md"))
}

type scaleResult struct {
	start           time.Duration // engine.New + Start: load, create keepers, plan every refresh, listen
	heap, heapAfter uint64        // live heap the engine holds, after Start and after the idle window
	goroutines      int           // goroutines the engine added
	first, last     time.Duration // the earliest and latest planned refresh, from the start
	idle            idle
}

// perHour extrapolates the idle window's CPU time to one hour.
func (r scaleResult) perHour() time.Duration {
	return time.Duration(float64(r.idle.cpu) * float64(time.Hour) / float64(r.idle.window)).Round(time.Millisecond)
}

// heap returns the live heap after a full collection.
func heap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// planned fails the test unless every server is fresh with a refresh planned and none has refreshed,
// and returns the earliest and latest planned refresh.
func planned(t *testing.T, eng *engine.Engine) (first, last time.Time) {
	t.Helper()
	s := eng.Snapshot()
	if len(s.Servers) != scaleServers {
		t.Fatalf("%d servers in the snapshot, want %d", len(s.Servers), scaleServers)
	}
	for _, st := range s.Servers {
		if st.State != engine.StateFresh || st.Next.IsZero() || !st.Last.At.IsZero() {
			t.Fatalf("%s: state %s, next refresh %v, last refresh %+v: want fresh, planned, never refreshed", st.Name, st.State, st.Next, st.Last)
		}
		if first.IsZero() || st.Next.Before(first) {
			first = st.Next
		}
		if st.Next.After(last) {
			last = st.Next
		}
	}
	return first, last
}
