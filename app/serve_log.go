package app

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
)

// The headless engine's log: `serve` writes one line per engine event on stderr, in logfmt (key=value
// pairs, values quoted when they hold a space, a quote or a control character), which journald,
// Loki/Promtail, Vector, Fluent Bit and `grep` all read:
//
//	time=2026-12-02T04:10:05.123Z level=info event=refreshed server=github trigger=schedule outcome=ok expires=… next=…
//
// A line carries no token material: engine.Event has no field that can hold a token, its Message is
// built from classified errors whose OAuth error_description oauth.Error already scrubbed of every
// secret the request sent (and truncated), and quoting keeps whatever an authorization server wrote
// on one line. The tray logs nothing here: notifications and its Status window say the same.

// eventSource is the engine as the log sees it.
type eventSource interface {
	Subscribe() (engine.Snapshot, <-chan engine.Event, func())
	Snapshot() engine.Snapshot
}

// eventLog writes the engine's events as log lines. Not safe for concurrent use: one goroutine
// writes at a time (serve's before follow, follow's after).
type eventLog struct {
	h   slog.Handler
	src eventSource
}

// newEventLog returns a log writing to w. withTime false leaves out time=, for a stderr the systemd
// journal reads (see journalStderr): it stamps every line itself.
func newEventLog(src eventSource, w io.Writer, withTime bool) *eventLog {
	opts := &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) > 0 {
			return a
		}
		switch a.Key {
		case slog.TimeKey:
			if !withTime {
				return slog.Attr{}
			}
		case slog.LevelKey: // level=info, as logfmt readers expect, not slog's INFO
			a.Value = slog.StringValue(strings.ToLower(a.Value.String()))
		case slog.MessageKey: // the event kind is the message: event=refreshed
			a.Key = "event"
		}
		return a
	}}
	return &eventLog{h: slog.NewTextHandler(w, opts), src: src}
}

// Events serve logs itself, beside the engine's: what it says as it starts, as log lines so that
// every line of serve's stderr parses (its banner goes to stdout). Only what fails before the engine
// exists — a wrong flag, an unusable config directory — is a plain `authkeeper: …` line, alone.
const (
	eventStartWarning = "warning"   // Engine.Warning: the engine runs, with a limitation (level warn)
	eventTookOver     = "took_over" // serve took the credentials over from a temporary owner (level info)
	eventStartFailed  = "failed"    // the engine could not start (level error); serve exits with status 1
)

// notice writes one line serve itself has to say (see eventStartWarning), message quoted as needed.
func (l *eventLog) notice(level slog.Level, event, message string) {
	l.write(time.Now(), level, event, slog.String("message", message))
}

// follow subscribes to the engine, writes one status line per server as it stands now, then one
// line per event until stop is called. stop returns once every event published before it has been
// written: call it after the engine has closed, so that what closing reports (a token it could not
// save) is logged too.
func (l *eventLog) follow() (stop func()) {
	src := l.src
	snap, ch, cancel := src.Subscribe()
	for _, st := range snap.Servers {
		l.status(st)
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case ev, ok := <-ch:
				if ok {
					l.event(ev)
					continue
				}
				// Dropped by the hub after falling behind: say so, and carry on from the current state.
				l.write(time.Now(), slog.LevelWarn, "lagged", slog.String("message", "events were missed; the status of every server follows"))
				snap, ch, cancel = src.Subscribe()
				for _, st := range snap.Servers {
					l.status(st)
				}
			case <-quit:
				cancel() // closes ch; the events already in it are still written
				for ev := range ch {
					l.event(ev)
				}
				return
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// event writes one event. Busy changes are not logged: they carry no server and come with every
// agent turn.
func (l *eventLog) event(ev engine.Event) {
	if ev.Kind == engine.EventBusyChanged {
		return
	}
	attrs := []slog.Attr{}
	add := func(key, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(key, v))
		}
	}
	add("server", ev.Server)
	add("trigger", string(ev.Trigger))
	add("outcome", string(ev.Outcome))
	if !ev.Expiry.IsZero() {
		attrs = append(attrs, slog.Time("expires", ev.Expiry))
	}
	if next := l.next(ev.Server); !next.IsZero() {
		attrs = append(attrs, slog.Time("next", next))
	}
	add("scopes", strings.Join(ev.Scopes, " "))
	quirks := make([]string, len(ev.Quirks))
	for i, q := range ev.Quirks {
		quirks[i] = string(q)
	}
	add("quirks", strings.Join(quirks, ","))
	add("message", ev.Message)
	l.write(ev.Time, eventLevel(ev.Kind), string(ev.Kind), attrs...)
}

// next is when server's next refresh is planned, or zero (no server, none planned, or gone). The
// keeper plans it before it publishes the event, so the snapshot taken now has it.
func (l *eventLog) next(server string) time.Time {
	if server == "" {
		return time.Time{}
	}
	for _, st := range l.src.Snapshot().Servers {
		if st.Name == server {
			return st.Next
		}
	}
	return time.Time{}
}

// status writes one server's standing as event=status: at start, and after missed events.
func (l *eventLog) status(st engine.ServerStatus) {
	attrs := []slog.Attr{slog.String("server", st.Name), slog.String("state", string(st.State))}
	if !st.Expiry.IsZero() {
		attrs = append(attrs, slog.Time("expires", st.Expiry))
	}
	if !st.Next.IsZero() {
		attrs = append(attrs, slog.Time("next", st.Next))
	}
	if st.State != engine.StateFresh && st.Message != "" {
		attrs = append(attrs, slog.String("message", st.Message))
	}
	l.write(time.Now(), stateLevel(st.State), "status", attrs...)
}

func (l *eventLog) write(t time.Time, level slog.Level, msg string, attrs ...slog.Attr) {
	if t.IsZero() {
		t = time.Now()
	}
	r := slog.NewRecord(t, level, msg, 0)
	r.AddAttrs(attrs...)
	_ = l.h.Handle(context.Background(), r) // a stderr that cannot be written must not stop the engine
}

// eventLevel: error when only the user can fix it, warn when authkeeper retries or something may
// need a look, info otherwise.
func eventLevel(k engine.EventKind) slog.Level {
	switch k {
	case engine.EventNeedsSignIn, engine.EventRevoked:
		return slog.LevelError
	case engine.EventDegraded, engine.EventWarning:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// stateLevel is eventLevel for a server's state.
func stateLevel(s engine.State) slog.Level {
	switch s {
	case engine.StateNeedsSignIn, engine.StateRevoked:
		return slog.LevelError
	case engine.StateDegraded:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}
