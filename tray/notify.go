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
	Title string
	// Body is what the notice says besides how to act on it; see text.
	Body    string
	Routine bool
	// Action is what the notice's button does for Server — the same as the menu item with that action
	// — or actNone for a notice with nothing to click.
	Action action
	Server string
}

// noticeFor is the notification an event calls for, if any. Refreshes are not here: they go through
// the coalescer. The engine announces needs_sign_in and revoked once per episode, so neither repeats.
func noticeFor(ev engine.Event) (notice, bool) {
	switch ev.Kind {
	case engine.EventNeedsSignIn:
		return notice{Title: ev.Server + " needs you to sign in again", Body: ev.Message, Action: actSignIn, Server: ev.Server}, true
	case engine.EventRevoked:
		return notice{Title: ev.Server + ": the server revoked access", Action: actSignIn, Server: ev.Server}, true
	case engine.EventSignedIn:
		return notice{Title: "Signed in to " + ev.Server, Body: "Agents using " + ev.Server + " carry on.", Routine: true}, true
	}
	return notice{}, false
}

// button is how a notice offers action a where the daemon shows actions: the freedesktop action key
// and the button's label, and the menu item's label, which the text names where it does not.
func button(a action) (key, label, menuItem string, ok bool) {
	if a == actSignIn {
		return "sign-in", "Sign in", "Sign in again", true
	}
	return "", "", "", false
}

// text is the body shown for n: how to act on it, then its Body. With buttons (the daemon shows the
// notice's action) it points at the button; without — a daemon without the "actions" capability,
// fyne's notifications on macOS and Windows — at the menu item that does the same.
func (n notice) text(buttons bool) string {
	_, label, menuItem, ok := button(n.Action)
	var how string
	switch {
	case !ok:
		return n.Body
	case buttons:
		how = "Click “" + label + "” to sign in again."
	default:
		how = "Choose “" + menuItem + "” under " + n.Server + " in the authkeeper menu."
	}
	if n.Body == "" {
		return how
	}
	return how + " " + n.Body
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

// notifier shows notices. deliver and settle may wait for the notification daemon (a D-Bus call the
// bus gives up on after about 25 s); the sender calls them on a goroutine of its own, one at a time.
// close stops listening for clicks; it may run while a call still waits.
type notifier interface {
	deliver(n notice)
	// settle withdraws the notifications whose action is done for server (it signed in), so none
	// stays on screen offering a sign-in nobody needs.
	settle(server string)
	close()
}

// appNotifier shows notices through fyne's App.SendNotification, which has no actions: the text says
// where in the menu to act instead. It is the notifier on macOS and Windows, and on Linux without a
// session bus.
type appNotifier struct {
	app interface{ SendNotification(*fyne.Notification) }
}

func (a appNotifier) deliver(n notice) {
	a.app.SendNotification(fyne.NewNotification(n.Title, n.text(false)))
}
func (appNotifier) settle(string) {}
func (appNotifier) close()        {}

// notifier is how the ui shows notices: through the desktop's notification daemon, with actions
// where it has them (options.DesktopNotices), or else through the fyne app.
func (u *ui) notifier() notifier {
	app := appNotifier{app: u.a}
	if !u.cfg.DesktopNotices {
		return app
	}
	return desktopNotifier(app, u.invoke)
}

// invoke carries out action a for server, chosen in a notification: on the UI goroutine, through the
// menu's own path (u.do), so a second click on "Sign in" focuses the sign-in window the first one
// opened. Safe from any goroutine; never blocks.
func (u *ui) invoke(a action, server string) {
	u.cfg.Post(func() {
		u.do(item{Action: a, Server: server})
		if u.cfg.Steps != nil {
			u.cfg.Steps("notification action")
		}
	})
}

// sender delivers notifications on a goroutine of its own. Sending one is a D-Bus call that waits for
// the notification daemon's answer (the bus gives up after about 25 s): a daemon that hangs must hold
// up neither the engine's event stream nor the menu, so send never blocks.
type sender struct {
	d       notifier
	queue   chan job
	done    chan struct{}
	dropped atomic.Int64 // notifications not sent because the queue was full or the sender stopped

	mu      sync.RWMutex
	stopped bool
}

func newSender(d notifier) *sender {
	s := &sender{d: d, queue: make(chan job, notifyQueue), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for j := range s.queue {
			if j.settled != "" {
				s.d.settle(j.settled)
			} else {
				s.d.deliver(j.n)
			}
		}
	}()
	return s
}

// job is one call on the notifier: deliver n, or settle server settled.
type job struct {
	n       notice
	settled string
}

// send queues a plain notification, one with no action (a failure the user should know of). Safe
// from any goroutine; never blocks.
func (s *sender) send(n *fyne.Notification) { s.notice(notice{Title: n.Title, Body: n.Content}) }

// notice queues n, or drops it when notifyQueue notifications already wait or the sender stopped.
// Safe from any goroutine; never blocks.
func (s *sender) notice(n notice) { s.put(job{n: n}) }

// settle queues the withdrawal of server's notifications with an action; like notice, it may drop it.
func (s *sender) settle(server string) { s.put(job{settled: server}) }

func (s *sender) put(j job) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.stopped {
		s.dropped.Add(1)
		return
	}
	select {
	case s.queue <- j:
	default:
		s.dropped.Add(1)
	}
}

// stop delivers what is queued, waiting at most d for the daemon, stops listening for clicks and
// ends the sender.
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
	s.d.close()
}
