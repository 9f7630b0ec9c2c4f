//go:build !headless

package tray

import (
	"context"
	"sync"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
)

// subscriber is the engine's event stream, as the tray follows it.
type subscriber interface {
	Subscribe() (engine.Snapshot, <-chan engine.Event, func())
	Snapshot() engine.Snapshot
}

const (
	// renderDelay gathers the events of a burst into one redraw. The engine publishes busy_changed
	// whenever a proxied request ends, so under agent traffic a redraw per event would resend the whole
	// D-Bus menu dozens of times a second.
	renderDelay = 150 * time.Millisecond
	// ageInterval redraws without events, so "expires in 42 min" keeps counting down.
	ageInterval = 30 * time.Second
)

// events follows the engine: every event goes to handle at once (on the follower's goroutine), and a
// fresh snapshot with the events since the last one goes to render shortly after. A subscription the
// hub drops for lagging is renewed from a fresh snapshot.
type events struct {
	first  engine.Snapshot // the snapshot the subscription started from
	cancel context.CancelFunc
	done   chan struct{}
}

// follow subscribes to src and follows it until ctx ends or stop is called.
func follow(ctx context.Context, src subscriber, clock engine.Clock, handle func(engine.Event),
	render func(engine.Snapshot, []engine.Event)) *events {
	ctx, cancel := context.WithCancel(ctx)
	snap, ch, unsub := src.Subscribe()
	l := &events{first: snap, cancel: cancel, done: make(chan struct{})}
	go l.run(ctx, src, ch, unsub, clock, handle, render)
	return l
}

// stop ends the subscription and waits for the follower to return.
func (l *events) stop() {
	l.cancel()
	<-l.done
}

func (l *events) run(ctx context.Context, src subscriber, ch <-chan engine.Event, unsub func(), clock engine.Clock,
	handle func(engine.Event), render func(engine.Snapshot, []engine.Event)) {
	defer close(l.done)
	defer func() { unsub() }() // the latest subscription's
	kick := make(chan struct{}, 1)
	signal := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	age := newRepeat(clock, ageInterval, signal)
	defer age.stop()
	var (
		pending []engine.Event
		armed   bool
	)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-ch:
			if !ok {
				unsub()
				var s engine.Snapshot
				s, ch, unsub = src.Subscribe()
				pending = append(pending, engine.Event{Time: s.Time, Kind: engine.EventWarning,
					Message: "the tray fell behind the engine; some events are not listed"})
				render(s, pending)
				pending = nil
				continue
			}
			handle(ev)
			pending = append(pending, ev)
			if !armed {
				armed = true
				clock.AfterFunc(renderDelay, signal)
			}
		case <-kick:
			armed = false
			render(src.Snapshot(), pending)
			pending = nil
		}
	}
}

// repeat calls f every d until stopped.
type repeat struct {
	clock engine.Clock
	d     time.Duration
	f     func()

	mu      sync.Mutex
	timer   engine.Timer
	stopped bool
}

func newRepeat(clock engine.Clock, d time.Duration, f func()) *repeat {
	r := &repeat{clock: clock, d: d, f: f}
	r.mu.Lock()
	r.timer = clock.AfterFunc(d, r.fire)
	r.mu.Unlock()
	return r
}

func (r *repeat) fire() {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	r.timer = r.clock.AfterFunc(r.d, r.fire)
	r.mu.Unlock()
	r.f()
}

func (r *repeat) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	r.timer.Stop()
}
