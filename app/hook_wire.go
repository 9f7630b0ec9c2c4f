package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/hook"
)

// eventHookLog is the event name of the event hook's own log lines.
const eventHookLog = "event_hook"

// startHook runs the event hook the settings name (prefs.event_hook), fed by the engine's events, and
// returns what stops it. Without one it does nothing. A hook the settings describe wrongly stops serve
// at start: on a headless fleet a hook that silently never fires is worse than no start.
func startHook(ctx context.Context, eng *engine.Engine, instance string, e env,
	report func(level slog.Level, event, message, plain string)) (func(), error) {
	if instance == "" {
		instance = e.getenv(envInstance)
	}
	if snap := eng.Snapshot(); instance == "" && snap.Fleet != nil {
		instance = snap.Fleet.Instance
	}
	logf := func(level slog.Level, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		report(level, eventHookLog, msg, msg)
	}
	h, err := hook.FromSettings(eng.Prefs().EventHook, instance, logf)
	if err != nil || h == nil {
		return func() {}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The hub drops a subscriber that falls behind; subscribe again rather than go deaf.
		for ctx.Err() == nil {
			_, events, unsubscribe := eng.Subscribe()
			h.Run(ctx, events)
			unsubscribe()
		}
	}()
	return func() {
		cancel()
		<-done
		h.Close()
	}, nil
}
