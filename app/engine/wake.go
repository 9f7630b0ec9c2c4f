package engine

import (
	"sync"
	"time"
)

// WakeDetector notices that the machine slept. Go's timers run on the monotonic clock, which stops
// while the machine is suspended, so a refresh planned for 10:00 fires an hour late after a one-hour
// sleep — after the token expired. The detector re-arms a coarse timer and compares the wall clock
// elapsed between firings with the interval asked for; a surplus beyond Slack means a suspend (or a
// wall-clock jump), and onWake runs so the engine re-evaluates every deadline at once.
type WakeDetector struct {
	clock    Clock
	interval time.Duration
	slack    time.Duration
	onWake   func(slept time.Duration)

	mu    sync.Mutex
	last  time.Time
	timer Timer
	stop  bool
}

// NewWakeDetector starts a detector ticking every interval (default 30 s); a wall-clock surplus over
// slack (default 10 s) calls onWake. One timer firing per interval is its whole cost while idle.
func NewWakeDetector(clock Clock, interval, slack time.Duration, onWake func(slept time.Duration)) *WakeDetector {
	if interval <= 0 {
		interval = 30 * time.Second
	}
	if slack <= 0 {
		slack = 10 * time.Second
	}
	w := &WakeDetector{clock: clock, interval: interval, slack: slack, onWake: onWake}
	w.mu.Lock()
	w.arm()
	w.mu.Unlock()
	return w
}

// arm records the wall clock and schedules the next check. Caller holds w.mu.
func (w *WakeDetector) arm() {
	// Round(0) strips the monotonic reading, so the difference is measured on the wall clock.
	w.last = w.clock.Now().Round(0)
	w.timer = w.clock.AfterFunc(w.interval, w.check)
}

func (w *WakeDetector) check() {
	w.mu.Lock()
	if w.stop {
		w.mu.Unlock()
		return
	}
	surplus := w.clock.Now().Round(0).Sub(w.last) - w.interval
	w.arm()
	w.mu.Unlock()
	if surplus > w.slack {
		w.onWake(surplus)
	}
}

// Stop ends the detector.
func (w *WakeDetector) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stop = true
	w.timer.Stop()
}
