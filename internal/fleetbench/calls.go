package fleetbench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/e2e"
)

// Call is one echo call an agent made through an instance's proxy.
type Call struct {
	At       time.Time // when the answer came
	Instance string
	Took     time.Duration
	// Err is nil when the echo came back; Failure is set when Err is the proxy's structured error.
	Err     error
	Failure *e2e.AuthFailure
}

// FleetUnavailable reports whether the call got the proxy's retryable auth_failure/fleet_unavailable.
func (c Call) FleetUnavailable() bool {
	return c.Failure != nil && c.Failure.Type == "auth_failure" && c.Failure.Subtype == "fleet_unavailable" && c.Failure.Retryable
}

// Calls are agents, one Go SDK session per instance through its proxy (e2e.Install.Connect), each
// calling echo in a loop until stopped. Safe for concurrent use.
type Calls struct {
	mu    sync.Mutex
	log   []Call
	stops map[string]context.CancelFunc
	wg    sync.WaitGroup
}

// StartCalls connects one agent to each live instance and starts it calling every interval.
func (b *Bench) StartCalls(t *testing.T, interval time.Duration) *Calls {
	t.Helper()
	c := &Calls{stops: map[string]context.CancelFunc{}}
	for _, in := range b.Live() {
		a := in.Connect(t, Server)
		ctx, cancel := context.WithCancel(context.Background())
		c.stops[in.ID] = cancel
		c.wg.Go(func() { c.loop(ctx, in.ID, a, interval) })
	}
	t.Cleanup(func() { c.StopAll() })
	return c
}

func (c *Calls) loop(ctx context.Context, id string, a *e2e.Agent, interval time.Duration) {
	for n := 0; ; n++ {
		text := fmt.Sprintf("%s-%d", id, n)
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		got, err := a.Echo(cctx, text)
		cancel()
		if ctx.Err() != nil {
			return // cut short by Stop: not an outcome
		}
		if err == nil && got != text {
			err = fmt.Errorf("echo %q came back as %q", text, got)
		}
		call := Call{At: time.Now(), Instance: id, Took: time.Since(start), Err: err}
		errors.As(err, &call.Failure)
		c.mu.Lock()
		c.log = append(c.log, call)
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Stop stops the agent of instance id (before the instance is killed: its calls would fail).
func (c *Calls) Stop(id string) {
	c.mu.Lock()
	cancel := c.stops[id]
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// StopAll stops every agent, waits for them, and returns every call made.
func (c *Calls) StopAll() []Call {
	c.mu.Lock()
	for _, cancel := range c.stops {
		cancel()
	}
	c.mu.Unlock()
	c.wg.Wait()
	return c.Log()
}

// Log returns the calls made so far, in the order their answers came.
func (c *Calls) Log() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Call(nil), c.log...)
}

// Between returns the calls whose answer came in [from, to) (a zero to: no end).
func Between(calls []Call, from, to time.Time) []Call {
	var out []Call
	for _, c := range calls {
		if !c.At.Before(from) && (to.IsZero() || c.At.Before(to)) {
			out = append(out, c)
		}
	}
	return out
}

// Tally counts calls: answered, failed with the retryable fleet_unavailable, and any other failure.
type Tally struct {
	OK               int `json:"ok"`
	FleetUnavailable int `json:"fleet_unavailable"`
	Failed           int `json:"failed"`
	// First is the first other failure (empty when none).
	First string `json:"first_failure,omitempty"`
}

// Count tallies calls.
func Count(calls []Call) Tally {
	var t Tally
	for _, c := range calls {
		switch {
		case c.Err == nil:
			t.OK++
		case c.FleetUnavailable():
			t.FleetUnavailable++
		default:
			t.Failed++
			if t.First == "" {
				t.First = fmt.Sprintf("via %s at %s: %v", c.Instance, c.At.Format("15:04:05.000"), c.Err)
			}
		}
	}
	return t
}
