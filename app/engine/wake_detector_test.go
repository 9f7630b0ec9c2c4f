package engine

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// jumpClock is the system clock (fake time under synctest) whose wall clock can be moved forward on
// its own, as it is when a laptop wakes: wall time jumped, the monotonic timers did not run.
type jumpClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Round(0).Add(c.offset)
}

func (c *jumpClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

func (c *jumpClock) Jump(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

func TestWakeDetectorFiresOnWallClockJumpOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := &jumpClock{}
		var slept atomic.Int64
		var calls atomic.Int32
		w := NewWakeDetector(clock, 30*time.Second, 10*time.Second, func(d time.Duration) {
			calls.Add(1)
			slept.Store(int64(d))
		})
		defer w.Stop()

		time.Sleep(10 * time.Minute) // ordinary running: no wake
		synctest.Wait()
		if n := calls.Load(); n != 0 {
			t.Fatalf("onWake called %d times without a jump", n)
		}

		time.Sleep(5 * time.Second)
		clock.Jump(time.Hour) // the machine slept for an hour
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if n := calls.Load(); n != 1 {
			t.Fatalf("onWake called %d times after a jump, want 1", n)
		}
		if d := time.Duration(slept.Load()); d != time.Hour {
			t.Errorf("slept = %v, want 1h", d)
		}

		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if n := calls.Load(); n != 1 {
			t.Errorf("onWake called again without a jump (%d)", n)
		}
	})
}
