//go:build !headless && (linux || freebsd || openbsd || netbsd || dragonfly)

package tray

import (
	"errors"
	"sync"

	"github.com/esiqveland/notify"
	"github.com/godbus/dbus/v5"
)

// desktopNotifier shows notices through the freedesktop notification daemon on the session bus
// (org.freedesktop.Notifications), with a button for a notice's action where the daemon advertises
// the "actions" capability; invoke is told of a click. Without a session bus it hands notices to
// fallback.
func desktopNotifier(fallback notifier, invoke func(action, string)) notifier {
	return &busNotifier{fallback: fallback, invoke: invoke}
}

// errNotifierClosed: the tray is quitting; a notice still queued goes out without a button.
var errNotifierClosed = errors.New("notifier closed")

// maxShown bounds the notices with an action remembered — to carry out a click, and to withdraw them
// once settled — until the daemon says they closed (a daemon that never does must not grow the map).
const maxShown = 32

// notifyAppName is the app_name of our notifications; daemons group and label them by it.
const notifyAppName = "authkeeper"

// busNotifier is the freedesktop notifier (Notifications spec 1.2, "Actions" and "ActionInvoked").
// It works on godbus's shared session connection — the one fyne, the tray item and the keychain
// use — and never closes it. When that connection is replaced (the bus restarted), the next
// notice subscribes on the new one and asks the new daemon for its capabilities again. Safe for
// concurrent use: deliver runs on the sender's goroutine, the signal handlers on the library's.
type busNotifier struct {
	fallback notifier
	invoke   func(action, string) // called on the library's signal goroutine; must not block

	mu      sync.Mutex
	conn    *dbus.Conn      // the connection lib listens on
	lib     notify.Notifier // nil until the first notice
	known   bool            // the daemon's capabilities were read on conn
	actions bool            // … and include "actions"
	shown   map[uint32]notice
	order   []uint32 // ids in shown, oldest first
	closed  bool
}

var _ notifier = (*busNotifier)(nil)

// deliver shows n, with its action as a button — and as the "default" action, which most daemons
// invoke when the notification itself is clicked — where the daemon supports actions. A notice with
// an action is critical: until the user acts, the server's agents are stopped, and the spec asks
// daemons not to let critical notifications expire by themselves.
func (b *busNotifier) deliver(n notice) {
	lib, actions, err := b.connect()
	if err != nil {
		b.fallback.deliver(n)
		return
	}
	note := notify.Notification{AppName: notifyAppName, Summary: n.Title, Body: n.text(actions),
		ExpireTimeout: notify.ExpireTimeoutSetByNotificationServer}
	key, label, _, ok := button(n.Action)
	if actions && ok {
		note.Actions = []notify.Action{notify.NewDefaultAction(label), {Key: key, Label: label}}
	}
	if ok {
		note.SetUrgency(notify.UrgencyCritical)
	}
	id, err := lib.SendNotification(note)
	if err != nil || !ok {
		return // a daemon that failed to show it: fyne's notification would go to the same daemon
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, again := b.shown[id]; !again {
		b.order = append(b.order, id)
	}
	b.shown[id] = n
	if len(b.order) > maxShown {
		delete(b.shown, b.order[0])
		b.order = b.order[1:]
	}
}

// connect returns the library on the current session connection and whether its daemon shows
// actions, subscribing and reading the capabilities when the connection is new. The capabilities
// are read again after a failure (no daemon yet: one may start later in the session).
func (b *busNotifier) connect() (notify.Notifier, bool, error) {
	conn, err := dbus.SessionBus() // shared: never closed here
	if err != nil {
		return nil, false, err
	}
	b.mu.Lock()
	lib, old, known, actions := b.lib, b.lib, b.known, b.actions
	if b.closed {
		b.mu.Unlock()
		return nil, false, errNotifierClosed
	}
	if conn != b.conn {
		lib, known = nil, false
	}
	b.mu.Unlock()
	if lib == nil {
		if old != nil {
			_ = old.Close() // its connection is gone; this only stops its goroutine
		}
		lib, err = notify.New(conn, notify.WithOnAction(b.onAction), notify.WithOnClosed(b.onClosed),
			notify.WithLogger(quiet{}))
		if err != nil {
			return nil, false, err
		}
		b.mu.Lock()
		if b.closed { // close ran meanwhile
			b.mu.Unlock()
			_ = lib.Close()
			return nil, false, errNotifierClosed
		}
		b.conn, b.lib, b.known, b.shown, b.order = conn, lib, false, map[uint32]notice{}, nil
		b.mu.Unlock()
	}
	if !known {
		caps, err := lib.GetCapabilities()
		if err != nil {
			return lib, false, nil // Notify will most likely fail too; it decides
		}
		actions = false
		for _, c := range caps {
			actions = actions || c == "actions"
		}
		b.mu.Lock()
		b.known, b.actions = true, actions
		b.mu.Unlock()
	}
	return lib, actions, nil
}

// settle closes the notifications with an action shown for server; the daemon's NotificationClosed
// then forgets them.
func (b *busNotifier) settle(server string) {
	b.mu.Lock()
	lib := b.lib
	if lib == nil {
		b.mu.Unlock()
		return
	}
	var ids []uint32
	for _, id := range b.order {
		if b.shown[id].Server == server {
			ids = append(ids, id)
		}
	}
	b.mu.Unlock()
	for _, id := range ids {
		_, _ = lib.CloseNotification(id) // already closed by the user: the daemon says so, nothing to do
	}
}

// onAction carries out the action of one of our notifications. Daemons send ActionInvoked to the
// notification's sender, but the signal may be broadcast and ids are the daemon's: only ids we
// remember, and only our keys, count.
func (b *busNotifier) onAction(s *notify.ActionInvokedSignal) {
	b.mu.Lock()
	n, ok := b.shown[s.ID]
	b.mu.Unlock()
	key, _, _, has := button(n.Action)
	if ok && has && (s.ActionKey == key || s.ActionKey == "default") {
		b.invoke(n.Action, n.Server)
	}
}

// onClosed forgets a notification the daemon no longer shows.
func (b *busNotifier) onClosed(s *notify.NotificationClosedSignal) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.shown[s.ID]; !ok {
		return
	}
	delete(b.shown, s.ID)
	for i, id := range b.order {
		if id == s.ID {
			b.order = append(b.order[:i:i], b.order[i+1:]...)
			break
		}
	}
}

// pending is how many notifications with an action are remembered.
func (b *busNotifier) pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.shown)
}

// close stops listening for clicks.
func (b *busNotifier) close() {
	b.mu.Lock()
	lib := b.lib
	b.lib, b.conn, b.closed = nil, nil, true
	b.mu.Unlock()
	if lib != nil {
		_ = lib.Close()
	}
}

// quiet drops the library's log lines: it logs every signal on the shared connection that is not a
// notification's (the tray item's, the keychain's) as "unknown", on the process's stderr.
type quiet struct{}

func (quiet) Printf(string, ...any) {}
