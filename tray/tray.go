//go:build !headless

// Package tray is authkeeper's desktop front end: a system-tray icon and menu over the engine, plus the
// Status, Add server and sign-in windows. It is a view: it holds no state the engine does not have
// (only which of its own windows are open), rebuilds the menu from the engine's snapshot on every
// event, and every click becomes a call on the engine. fyne objects are touched only on the UI
// goroutine: work done elsewhere comes back through fyne.Do.
package tray

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/driver/desktop"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/assets"
	"github.com/authkeeper/authkeeper/tray/autostart"
)

// AppID is the application identifier shared with FyneApp.toml; fyne keys preferences by it.
const AppID = "dev.authkeeper.app"

// Run shows the tray icon and menu for e and blocks until the user chooses Quit or ctx ends. It must be
// called on the main goroutine. It satisfies app.UI.
//
// On Linux and the BSDs the idle tray runs no GUI toolkit loop: the icon and menu are fyne.io/systray
// over D-Bus, and fyne's event loop starts only when a window or the clipboard is first needed (see
// mainLoop and lazyLoop).
func Run(ctx context.Context, e *engine.Engine) error {
	a := fyneapp.NewWithID(AppID)
	a.SetIcon(fyne.NewStaticResource("icon.png", assets.Icon))
	if _, ok := a.(desktop.App); !ok {
		return errors.New("this desktop has no system tray; run `authkeeper serve` for the headless engine")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the program for start at login: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := newMainLoop(a)
	sh := startShell(a, m.post)
	u := newUI(ctx, a, e, options{Autostart: autostart.Config{Exec: exe}, Post: m.post, GUI: m.gui, Quit: m.quit, Shell: sh, DesktopNotices: true})
	defer u.close()
	u.renewAutostart()
	if !lazyLoop {
		m.post(func() { m.gui(func() {}) })
	}
	go func() {
		<-ctx.Done()
		m.post(m.quit)
	}()
	m.run()
	return nil
}

// options configure the view; Run fills them in, tests vary them.
type options struct {
	// Clock times the notification window and the menu's lifetimes; default app.SystemClock.
	Clock engine.Clock
	// Autostart is where "Start at login" writes its entry; Exec is required for the item to work.
	Autostart autostart.Config
	// NotifyWindow is how long refresh notices gather into one; default coalesceWindow (10 s).
	NotifyWindow time.Duration
	// Post runs f on the UI goroutine; default fyne.Do. (fyne's test driver runs fyne.Do inline on the
	// caller's goroutine, so tests post to their own goroutine instead.)
	Post func(f func())
	// GUI runs f, on the UI goroutine, once fyne's event loop runs (windows, the clipboard); default:
	// f at once, as under fyne's test driver, which needs no loop.
	GUI func(f func())
	// Quit ends the app; default the fyne app's Quit.
	Quit func()
	// Shell is the tray icon and menu; nil draws none (fyne's test driver has no tray).
	Shell shell
	// Steps, in tests, is told of each asynchronous step the windows complete; nil in the app.
	Steps func(string)
	// DesktopNotices shows notifications through the desktop's notification daemon on the session bus,
	// with a button for a notice's action where the daemon has them (Linux and the BSDs); default
	// false: through the fyne app's SendNotification, as on macOS and Windows. Run sets it.
	DesktopNotices bool
}

// ui is the controller: it renders snapshots and turns clicks into engine calls. Every field below mu
// in the struct is owned by the UI goroutine.
type ui struct {
	ctx   context.Context
	a     fyne.App
	eng   *engine.Engine
	cfg   options
	notes *coalescer
	out   *sender
	loop  *events

	snap    engine.Snapshot
	recent  []engine.Event // newest last, at most maxRecent
	icon    iconState
	model   []item // the menu last drawn
	menu    *fyne.Menu
	status  *statusWindow
	adder   *addWindow
	signIns map[string]*signInWindow
	removes map[string]fyne.Window
}

// maxRecent bounds the events the Status window lists.
const maxRecent = 200

// newUI subscribes to e, draws the first menu and starts following events. Call on the UI goroutine.
func newUI(ctx context.Context, a fyne.App, e *engine.Engine, cfg options) *ui {
	if cfg.Clock == nil {
		cfg.Clock = engine.SystemClock{}
	}
	if cfg.NotifyWindow == 0 {
		cfg.NotifyWindow = coalesceWindow
	}
	if cfg.Post == nil {
		cfg.Post = fyne.Do
	}
	if cfg.GUI == nil {
		cfg.GUI = func(f func()) { f() }
	}
	if cfg.Quit == nil {
		cfg.Quit = a.Quit
	}
	u := &ui{ctx: ctx, a: a, eng: e, cfg: cfg, icon: -1, signIns: map[string]*signInWindow{}, removes: map[string]fyne.Window{}}
	u.out = newSender(u.notifier())
	u.notes = newCoalescer(cfg.Clock, cfg.NotifyWindow, u.notify)
	e.SetShowHandler(func() { cfg.Post(func() { u.gui(u.showStatus) }) })
	u.loop = follow(ctx, e, cfg.Clock, u.handle, func(s engine.Snapshot, evs []engine.Event) {
		cfg.Post(func() { u.render(s, evs) })
	})
	u.render(u.loop.first, nil)
	u.firstRun()
	return u
}

// close stops following the engine, drops a pending refresh notice and delivers the queued ones.
func (u *ui) close() {
	u.eng.SetShowHandler(nil)
	u.loop.stop()
	u.notes.stop()
	u.out.stop(notifyDrain)
}

// notifyDrain is how long quitting waits for queued notifications to reach the daemon.
const notifyDrain = 2 * time.Second

// handle runs on the event goroutine for every event: notifications do not wait for the UI thread.
func (u *ui) handle(ev engine.Event) {
	if isRefresh(ev) {
		u.notes.add(ev.Server)
		return
	}
	if ev.Kind == engine.EventSignedIn || ev.Kind == engine.EventRemoved {
		// Its "sign in again" notification, if still shown, is done: signed in, or nothing to sign in to.
		u.out.settle(ev.Server)
	}
	if n, ok := noticeFor(ev); ok {
		u.notify(n)
	}
}

// notify sends n unless it is routine and the user turned notifications off. Notifications never
// block anything: the sender queues them, and the daemon shows them without waiting for the user.
func (u *ui) notify(n notice) {
	if n.Routine && !u.eng.Prefs().Notifications {
		return
	}
	u.out.notice(n)
}

// render shows snapshot s and appends evs to the recent events. UI goroutine.
func (u *ui) render(s engine.Snapshot, evs []engine.Event) {
	u.snap = s
	for _, ev := range evs {
		if ev.Kind != engine.EventBusyChanged {
			u.recent = append(u.recent, ev)
		}
	}
	if n := len(u.recent) - maxRecent; n > 0 {
		u.recent = append([]engine.Event(nil), u.recent[n:]...)
	}
	now := u.cfg.Clock.Now()
	model := menuModel(s, u.eng.Prefs(), now)
	changed := !reflect.DeepEqual(model, u.model)
	if changed {
		u.model, u.menu = model, fyneMenu(model, u.do)
	}
	if u.status != nil {
		u.status.update(s, u.recent, now)
	}
	if u.cfg.Steps != nil {
		u.cfg.Steps("render")
	}
	if u.cfg.Shell == nil || !changed {
		return
	}
	// Only a changed menu is sent: every new menu renumbers the D-Bus menu, and a panel (or a user)
	// holding the old one would click a vanished id.
	u.cfg.Shell.SetMenu(u.menu)
	if ic := iconFor(s); ic != u.icon {
		u.icon = ic
		u.cfg.Shell.SetIcon(iconResource(ic))
	}
	u.cfg.Shell.SetTooltip(tooltip(s, now))
}

// gui runs f, a step that needs fyne's event loop (a window, the clipboard), on the UI goroutine.
func (u *ui) gui(f func()) { u.cfg.GUI(f) }

// rerender draws the current snapshot again, after a preference changed.
func (u *ui) rerender() { u.render(u.eng.Snapshot(), nil) }

func iconResource(s iconState) fyne.Resource {
	switch s {
	case iconBusy:
		return fyne.NewStaticResource("tray-busy.png", assets.TrayBusy)
	case iconAttention:
		return fyne.NewStaticResource("tray-attention.png", assets.TrayAttention)
	case iconError:
		return fyne.NewStaticResource("tray-error.png", assets.TrayError)
	case iconEmpty:
		return fyne.NewStaticResource("tray-empty.png", assets.TrayEmpty)
	}
	return fyne.NewStaticResource("tray-fresh.png", assets.TrayFresh)
}
