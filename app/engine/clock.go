package engine

import "time"

// Clock is the engine's source of time. The scheduler arms timers through it, so tests can run the
// engine under testing/synctest (fake time for the real clock) or move the wall clock on its own to
// play a laptop waking from sleep.
type Clock interface {
	// Now returns the current wall-clock time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d has elapsed on the monotonic clock. Like Go's
	// timers it does not count time spent suspended: that is what the wake detector is for.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled call that can be cancelled.
type Timer interface {
	// Stop prevents the call if it has not run yet and reports whether it did so.
	Stop() bool
}

// SystemClock is the real clock.
type SystemClock struct{}

var _ Clock = SystemClock{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
