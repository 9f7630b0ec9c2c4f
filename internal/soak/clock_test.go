//go:build soak

package soak

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// jumpClock is wall time plus an offset that the test moves forward, as a laptop's clock does when it
// wakes from sleep; its timers run on the monotonic clock, which did not advance meanwhile. Safe for
// concurrent use.
type jumpClock struct {
	mu     sync.Mutex
	offset time.Duration
}

var _ engine.Clock = (*jumpClock)(nil)

// Now returns the wall time (without a monotonic reading) plus the offset.
func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Round(0).Add(c.offset)
}

// AfterFunc wraps time.AfterFunc: timers do not see the jump.
func (c *jumpClock) AfterFunc(d time.Duration, f func()) engine.Timer { return time.AfterFunc(d, f) }

func (c *jumpClock) jump(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// clockJump runs the engine in process: the binary has no way to move its wall clock.
func clockJump(t *testing.T, c *caseResult) {
	kr := testbed.StartKeyring(t)
	for _, kv := range kr.Bus.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	as := testbed.NewAuthServer(t, testbed.AuthServerOptions{AccessTokenTTL: 10 * time.Minute})
	srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: as.Issuer, RequiredScopes: []string{"mcp:read"}})
	home := t.TempDir()
	rt, err := os.MkdirTemp("/tmp", "aksoak")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	clock := &jumpClock{}
	browser := testbed.NewBrowser(t, testbed.BrowserOptions{})
	eng, err := engine.New(engine.Config{
		Paths:     engine.Paths{ConfigDir: filepath.Join(home, "config"), StateDir: filepath.Join(home, "state"), RuntimeDir: rt},
		ProxyAddr: "127.0.0.1:0", Opener: browser, Clock: clock, Proxy: proxy.FrontEnd, Control: control.FrontEnd,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	if err := eng.Add(context.Background(), engine.AddRequest{Name: "sleepy", URL: srv.URL}); err != nil {
		t.Fatal(err)
	}
	_, events, cancel := eng.Subscribe()
	defer cancel()
	agent := connectGo(t, "sleepy", eng.ProxyEndpoint("sleepy"))
	tl := newTally(true)
	for n := range 3 {
		tl.add(agent.call(context.Background(), n))
	}
	before := eng.Snapshot().Servers[0].Expiry

	// Jump 11 minutes, past the 10-minute token's expiry, with no call running.
	jumped := time.Now()
	clock.jump(11 * time.Minute)
	var wake engine.Event
	deadline := time.After(45 * time.Second)
wait:
	for {
		select {
		case ev := <-events:
			if ev.Kind == engine.EventRefreshed && ev.Server == "sleepy" {
				wake = ev
				break wait
			}
		case <-deadline:
			break wait
		}
	}
	refreshedAfter := time.Since(jumped)
	first := agent.call(context.Background(), 2) // whoami
	tl.add(first)
	after := eng.Snapshot().Servers[0].Expiry

	// A second jump with calls running.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { agent.loop(ctx, tl, 200*time.Millisecond) })
	time.Sleep(2 * time.Second)
	clock.jump(11 * time.Minute)
	time.Sleep(8 * time.Second)
	stop()
	wg.Wait()

	c.figure("first_refresh_trigger", wake.Trigger)
	c.figure("first_refresh_after_jump_s", refreshedAfter.Round(100*time.Millisecond).Seconds())
	c.figure("outcomes", causes(tl.outcomes()))
	c.figure("calls", tl.calls)
	c.check(t, wake.Kind == engine.EventRefreshed && wake.Trigger == "wake", "first refresh after the jump: %q trigger %q, want a refresh triggered by wake", wake.Kind, wake.Trigger)
	c.check(t, first.Cause == "" && first.Left > 0, "the first call after the jump: %q (left %v)", first.Cause, first.Left)
	c.check(t, after.After(before), "the token was not replaced after the jump")
	c.check(t, tl.failed() == 0, "%d failed calls: %v", tl.failed(), causes(tl.outcomes()))
}
