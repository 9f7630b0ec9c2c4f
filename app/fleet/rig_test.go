package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// testTTL is the lease TTL of the instances under test: the smallest allowed, so takeovers and
// losses happen within the test budget.
const testTTL = 2 * time.Second

// rig is a fleet test's cluster, prefix and keys.
type rig struct {
	t      *testing.T
	c      *testbed.EtcdCluster
	prefix string
	keys   *Keys
	logs   *testbed.SyncBuffer
}

// newRig gives a test its own prefix (and fleet key) on cluster c.
func newRig(t *testing.T, c *testbed.EtcdCluster) *rig {
	t.Helper()
	keys, _ := testKeys(t, "k1")
	return &rig{t: t, c: c, prefix: "/t/" + randHex(t, 4), keys: keys, logs: &testbed.SyncBuffer{}}
}

func randHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// open opens an instance with the given id on the rig's prefix, recording its handler calls; it is
// closed in cleanup.
func (r *rig) open(id string) (*Fleet, *recorder) {
	r.t.Helper()
	return r.openWith(Config{Instance: id})
}

func (r *rig) openWith(cfg Config) (*Fleet, *recorder) {
	r.t.Helper()
	cfg.Endpoints, cfg.Prefix, cfg.LeaseTTL = r.c.Endpoints(), r.prefix, testTTL
	if cfg.Keys == nil {
		cfg.Keys = r.keys
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = time.Second
	}
	id := cfg.Instance
	cfg.Logf = func(format string, args ...any) {
		fmt.Fprintf(r.logs, "%s %s: %s\n", time.Now().Format("15:04:05.000"), id, fmt.Sprintf(format, args...))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := Open(ctx, cfg)
	if err != nil {
		r.t.Fatalf("Open %s: %v", id, err)
	}
	rec := newRecorder()
	f.SetHandler(rec.handler())
	r.t.Cleanup(func() {
		_ = f.Close()
		if r.t.Failed() {
			r.t.Logf("fleet log of %s:\n%s", id, r.logs.String())
		}
	})
	return f, rec
}

// bare builds an instance of the rig's prefix without opening it: no session and no goroutines but
// the dispatcher, so a test can drive one part (a watch) alone. It is stopped in cleanup.
func (r *rig) bare(id string) (*Fleet, *recorder) {
	r.t.Helper()
	cfg, err := Config{Endpoints: r.c.Endpoints(), Prefix: r.prefix, Keys: r.keys, Instance: id}.withDefaults()
	if err != nil {
		r.t.Fatal(err)
	}
	f := &Fleet{cfg: cfg, cli: r.raw(), events: queue{wake: make(chan struct{}, 1)}, records: map[string]int64{},
		names: map[string]*run{}}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	rec := newRecorder()
	f.SetHandler(rec.handler())
	f.wg.Add(1)
	go f.dispatch()
	r.t.Cleanup(func() { f.cancel(); f.wg.Wait() })
	return f, rec
}

// raw is a plain etcd client on the rig's cluster, closed in cleanup.
func (r *rig) raw() *clientv3.Client {
	r.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: r.c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// recorder keeps a fleet instance's handler calls, as lines: "changed NAME REV", "leader NAME true",
// "asked NAME DIGEST REASON". Safe for concurrent use.
type recorder struct {
	mu     sync.Mutex
	calls  []string
	notify chan struct{} // closed and replaced on every call
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{})} }

func (rc *recorder) add(line string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.calls = append(rc.calls, line)
	close(rc.notify)
	rc.notify = make(chan struct{})
}

func (rc *recorder) handler() Handler {
	return Handler{
		Changed: func(name string, rev uint64) { rc.add(fmt.Sprintf("changed %s %d", name, rev)) },
		Leader:  func(name string, leading bool) { rc.add(fmt.Sprintf("leader %s %v", name, leading)) },
		Asked:   func(name, digest, reason string) { rc.add(fmt.Sprintf("asked %s %s %s", name, digest, reason)) },
	}
}

// Calls returns the calls so far.
func (rc *recorder) Calls() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.calls)
}

// has reports whether a call starting with prefix was made.
func (rc *recorder) has(prefix string) bool {
	return slices.ContainsFunc(rc.Calls(), func(c string) bool { return strings.HasPrefix(c, prefix) })
}

// wait waits up to d for a call starting with prefix and returns how long it took; it fails the test
// when none comes.
func (rc *recorder) wait(t *testing.T, prefix string, d time.Duration) time.Duration {
	t.Helper()
	return rc.waitN(t, prefix, 1, d)
}

// waitN waits up to d for n calls starting with prefix and returns how long it took; it fails the test
// when they do not come.
func (rc *recorder) waitN(t *testing.T, prefix string, n int, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		rc.mu.Lock()
		hits := 0
		for _, c := range rc.calls {
			if strings.HasPrefix(c, prefix) {
				hits++
			}
		}
		ch := rc.notify
		rc.mu.Unlock()
		if hits >= n {
			return time.Since(start)
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("not %d× %q within %v; calls: %q", n, prefix, d, rc.Calls())
		}
	}
}

// leaderOf waits until exactly one of the instances reports leading name and returns its index.
func leaderOf(t *testing.T, name string, d time.Duration, fs ...*Fleet) int {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		var leading []int
		for i, f := range fs {
			if f.Leading(name) {
				leading = append(leading, i)
			}
		}
		if len(leading) > 1 {
			t.Fatalf("instances %v all lead %s", leading, name)
		}
		if len(leading) == 1 {
			return leading[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no instance leads %s after %v", name, d)
		}
		time.Sleep(20 * time.Millisecond) // polling a state that changes on etcd's schedule
	}
}
