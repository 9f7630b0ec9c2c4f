//go:build !headless

package tray

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"

	"github.com/authkeeper/authkeeper/app/engine"
)

// notice is one desktop notification. Routine notices (a refresh, a sign-in) are silenced by the
// Notifications preference; notices about a server that needs the user are always sent, because until
// the user acts the agents using it are stopped.
type notice struct {
	Title, Body string
	Routine     bool
}

// noticeFor is the notification an event calls for, if any. Refreshes are not here: they go through
// the coalescer. The engine announces needs_sign_in and revoked once per episode, so neither repeats.
func noticeFor(ev engine.Event) (notice, bool) {
	switch ev.Kind {
	case engine.EventNeedsSignIn:
		return notice{Title: ev.Server + " needs you to sign in again",
			Body: "Choose “Sign in again” under " + ev.Server + " in the authkeeper menu. " + ev.Message}, true
	case engine.EventRevoked:
		return notice{Title: ev.Server + ": the server revoked access",
			Body: "Choose “Sign in again” under " + ev.Server + " in the authkeeper menu."}, true
	case engine.EventSignedIn:
		return notice{Title: "Signed in to " + ev.Server, Body: "Agents using " + ev.Server + " carry on.", Routine: true}, true
	}
	return notice{}, false
}

// isRefresh reports whether ev is a successful refresh, which the coalescer announces.
func isRefresh(ev engine.Event) bool {
	return ev.Kind == engine.EventRefreshed || ev.Kind == engine.EventDeadlineRefresh
}

// coalesceWindow is how long refresh notices gather before one is sent for all of them.
const coalesceWindow = 10 * time.Second

// coalescer turns a burst of refreshes into one notice: the first refresh opens a window, and when it
// closes one notice names every server refreshed in it ("Refreshed auth for X, Y and 2 more"). Safe for
// concurrent use.
type coalescer struct {
	clock  engine.Clock
	window time.Duration
	send   func(notice) // called on the clock's timer goroutine; must not block for long

	mu    sync.Mutex
	names []string
	timer engine.Timer
}

// newCoalescer returns a coalescer that calls send once per window that saw refreshes.
func newCoalescer(clock engine.Clock, window time.Duration, send func(notice)) *coalescer {
	return &coalescer{clock: clock, window: window, send: send}
}

// add records that server was refreshed.
func (c *coalescer) add(server string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.names, server) {
		c.names = append(c.names, server)
	}
	if c.timer == nil {
		c.timer = c.clock.AfterFunc(c.window, c.flush)
	}
}

func (c *coalescer) flush() {
	c.mu.Lock()
	n := c.names
	c.names, c.timer = nil, nil
	c.mu.Unlock()
	if len(n) > 0 {
		c.send(refreshNotice(n))
	}
}

// stop drops any pending notice.
func (c *coalescer) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.names, c.timer = nil, nil
}

// refreshNotice announces the refresh of servers n.
func refreshNotice(n []string) notice {
	body := "Their agents keep working."
	if len(n) == 1 {
		body = "Agents using it keep working."
	}
	return notice{Title: "Refreshed auth for " + names(n), Body: body, Routine: true}
}

// notifyQueue bounds the notifications waiting for the daemon; more are dropped, oldest kept.
const notifyQueue = 16

// sender delivers notifications on a goroutine of its own. Sending one is a D-Bus call that waits for
// the notification daemon's answer (the bus gives up after about 25 s): a daemon that hangs must hold
// up neither the engine's event stream nor the menu, so send never blocks.
type sender struct {
	app     interface{ SendNotification(*fyne.Notification) }
	queue   chan *fyne.Notification
	done    chan struct{}
	dropped atomic.Int64 // notifications not sent because the queue was full or the sender stopped

	mu      sync.RWMutex
	stopped bool
}

func newSender(a interface{ SendNotification(*fyne.Notification) }) *sender {
	s := &sender{app: a, queue: make(chan *fyne.Notification, notifyQueue), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for n := range s.queue {
			s.app.SendNotification(n)
		}
	}()
	return s
}

// send queues n, or drops it when notifyQueue notifications already wait or the sender stopped. Safe
// from any goroutine.
func (s *sender) send(n *fyne.Notification) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.stopped {
		s.dropped.Add(1)
		return
	}
	select {
	case s.queue <- n:
	default:
		s.dropped.Add(1)
	}
}

// stop delivers what is queued, waiting at most d for the daemon, and ends the sender.
func (s *sender) stop(d time.Duration) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	close(s.queue)
	s.mu.Unlock()
	select {
	case <-s.done:
	case <-time.After(d):
	}
}
