package testbed

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// Display is a virtual desktop for UI tests: an Xvfb screen, a private session bus, the dunst
// notification daemon on it, and a D-Bus monitor that records every notification sent. Safe for
// concurrent use.
type Display struct {
	// Name is the X display, e.g. ":42".
	Name string
	// Bus is the session bus the display's programs use.
	Bus *Bus

	mu     sync.Mutex
	cond   *sync.Cond
	notes  []Notification
	xvfb   *Process
	daemon *Process
	choice string // dunst: the file telling its dmenu script which action to pick
}

// Notification is one org.freedesktop.Notifications.Notify call seen on the bus.
type Notification struct {
	App, Summary, Body string
	// Actions are the notification's action keys and labels, alternating (key, label, key, label…).
	Actions []string
}

// Daemon is a notification daemon a Display can run.
type Daemon string

const (
	// Dunst advertises the "actions" capability; InvokeAction and ClickNotification drive its actions.
	Dunst Daemon = "dunst"
	// NotifyOSD, Ubuntu's notify-osd (Debian package notify-osd), shows no actions and does not
	// advertise the "actions" capability: the daemon a client must fall back to text for.
	NotifyOSD Daemon = "notify-osd"
)

// DisplayOptions vary a Display.
type DisplayOptions struct {
	// Daemon is the notification daemon; default Dunst.
	Daemon Daemon
}

// NewDisplay starts Xvfb, a session bus, dunst and the monitor; sets DISPLAY and
// DBUS_SESSION_BUS_ADDRESS for the test (so it must not be parallel); and stops them all in cleanup.
func NewDisplay(t testing.TB) *Display {
	t.Helper()
	return NewDisplayWith(t, DisplayOptions{})
}

// NewDisplayWith is NewDisplay with another notification daemon.
func NewDisplayWith(t testing.TB, opts DisplayOptions) *Display {
	t.Helper()
	linuxOnly(t, "a virtual display (Xvfb, a notification daemon, D-Bus)")
	Need(t, "Xvfb", "dbus-daemon")
	daemon := daemonCommand(t, opts.Daemon)
	bus := SessionBus(t)
	d := &Display{Bus: bus}
	d.cond = sync.NewCond(&d.mu)

	// -displayfd makes Xvfb pick a free display number and write it to the pipe once it accepts clients.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("display: %v", err)
	}
	x := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1280x800x24", "-nolisten", "tcp")
	x.ExtraFiles = []*os.File{w}
	d.xvfb = StartProcess(t, "Xvfb", x)
	w.Close()
	num := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		r.Close()
		num <- strings.TrimSpace(line)
	}()
	select {
	case n := <-num:
		if n == "" {
			t.Fatalf("Xvfb exited without a display number; output:\n%s", d.xvfb.Output())
		}
		d.Name = ":" + n
	case <-time.After(20 * time.Second):
		t.Fatalf("Xvfb did not start within 20s; output:\n%s", d.xvfb.Output())
	}
	t.Setenv("DISPLAY", d.Name)
	t.Setenv("WAYLAND_DISPLAY", "")

	d.monitor(t)
	if opts.Daemon == "" || opts.Daemon == Dunst {
		d.configureDunst(t, daemon)
	}
	daemon.Env = append(os.Environ(), "DISPLAY="+d.Name)
	d.daemon = StartProcess(t, filepath.Base(daemon.Path), daemon)
	bus.WaitName(t, "org.freedesktop.Notifications", 10*time.Second, d.daemon.Done())
	return d
}

// daemonCommand is the command that runs daemon d, or skips (fails under CI) when it is missing.
func daemonCommand(t testing.TB, d Daemon) *exec.Cmd {
	t.Helper()
	switch d {
	case "", Dunst:
		Need(t, "dunst")
		return exec.Command("dunst")
	case NotifyOSD:
		// Not on PATH: Debian installs it under the multiarch libdir for D-Bus activation.
		paths, _ := filepath.Glob("/usr/lib/*/notify-osd")
		if len(paths) == 0 {
			missing(t, "notify-osd not found in /usr/lib/*/ (run `make deps`)")
		}
		return exec.Command(paths[0])
	}
	t.Fatalf("display: unknown notification daemon %q", d)
	return nil
}

// configureDunst writes dunst's config and adds it to cmd. dunst's context menu runs "dmenu" with a
// line per action ("#Label (summary) [id,key]") on stdin and invokes the one printed back; here dmenu
// is a script that prints the line InvokeAction asks for.
func (d *Display) configureDunst(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	d.choice = filepath.Join(d.Bus.Dir, "dmenu-choice")
	dmenu := filepath.Join(d.Bus.Dir, "dmenu")
	script := "#!/bin/sh\ngrep -F -- \"$(sed -n 1p '" + d.choice + "')\" | grep -m1 -F -- \"$(sed -n 2p '" + d.choice + "')\"\n"
	if err := os.WriteFile(dmenu, []byte(script), 0o700); err != nil {
		t.Fatalf("display: %v", err)
	}
	// Short timeouts keep dunst's queue from growing during a burst; the monitor sees every call
	// anyway. Critical notifications never expire (dunst's default), so a test can act on them.
	conf := filepath.Join(d.Bus.Dir, "dunstrc")
	rc := "[global]\n    dmenu = " + dmenu + "\n    show_indicators = yes\n" +
		"    font = DejaVu Sans 10\n    width = 420\n    frame_width = 2\n    padding = 10\n    horizontal_padding = 12\n" +
		"[urgency_low]\n    timeout = 2\n[urgency_normal]\n    timeout = 2\n[urgency_critical]\n    timeout = 0\n"
	if err := os.WriteFile(conf, []byte(rc), 0o600); err != nil {
		t.Fatalf("display: %v", err)
	}
	cmd.Args = append(cmd.Args, "-config", conf)
}

// ClickNotification does what clicking the newest notification does where the click runs its
// action (dunst's do_action): dunst emits ActionInvoked with the "default" action, or with the only
// action the notification has. Dunst only.
func (d *Display) ClickNotification(t testing.TB) {
	t.Helper()
	d.dunstctl(t, "action", "0")
}

// InvokeAction chooses the action key of the shown notification whose summary contains summary, as
// a user does from dunst's context menu: dunst emits ActionInvoked(id, key) to the notification's
// sender. Dunst only.
func (d *Display) InvokeAction(t testing.TB, summary, key string) {
	t.Helper()
	if d.choice == "" {
		t.Fatal("display: InvokeAction needs dunst")
	}
	// The lines end "(summary) [id,key]"; dmenu picks the first with both.
	if err := os.WriteFile(d.choice, []byte(summary+"\n,"+key+"]\n"), 0o600); err != nil {
		t.Fatalf("display: %v", err)
	}
	d.dunstctl(t, "context")
}

func (d *Display) dunstctl(t testing.TB, args ...string) {
	t.Helper()
	Need(t, "dunstctl")
	cmd := exec.Command("dunstctl", args...)
	cmd.Env = append(os.Environ(), d.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dunstctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Env returns the environment a child process needs to use this display and its bus.
func (d *Display) Env() []string {
	return append([]string{"DISPLAY=" + d.Name}, d.Bus.Env()...)
}

// monitor turns a private bus connection into a monitor of Notify calls and records them.
func (d *Display) monitor(t testing.TB) {
	t.Helper()
	c := d.Bus.Connect(t)
	rule := "type='method_call',interface='org.freedesktop.Notifications',member='Notify'"
	call := c.BusObject().Call("org.freedesktop.DBus.Monitoring.BecomeMonitor", 0, []string{rule}, uint32(0))
	if call.Err != nil {
		t.Fatalf("display: become a D-Bus monitor: %v", call.Err)
	}
	ch := make(chan *dbus.Message, 64)
	c.Eavesdrop(ch)
	go func() {
		for m := range ch {
			if m.Type != dbus.TypeMethodCall || len(m.Body) < 6 {
				continue
			}
			n := Notification{}
			n.App, _ = m.Body[0].(string)
			n.Summary, _ = m.Body[3].(string)
			n.Body, _ = m.Body[4].(string)
			n.Actions, _ = m.Body[5].([]string)
			d.mu.Lock()
			d.notes = append(d.notes, n)
			d.cond.Broadcast()
			d.mu.Unlock()
		}
	}()
}

// Notifications returns every notification sent so far, oldest first.
func (d *Display) Notifications() []Notification {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Notification(nil), d.notes...)
}

// WaitNotification waits up to timeout for a notification whose summary contains substr and returns it.
func (d *Display) WaitNotification(t testing.TB, substr string, timeout time.Duration) Notification {
	t.Helper()
	timer := time.AfterFunc(timeout, func() {
		d.mu.Lock()
		d.cond.Broadcast()
		d.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(timeout)
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		for _, n := range d.notes {
			if strings.Contains(n.Summary, substr) {
				return n
			}
		}
		if !time.Now().Before(deadline) {
			t.Fatalf("no notification with %q within %v; seen: %+v", substr, timeout, d.notes)
		}
		d.cond.Wait()
	}
}

// Screenshot writes a PNG of the whole screen to path (ImageMagick's import).
func (d *Display) Screenshot(t testing.TB, path string) {
	t.Helper()
	Need(t, "import")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	cmd := exec.Command("import", "-window", "root", path)
	cmd.Env = append(os.Environ(), "DISPLAY="+d.Name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("screenshot %s: %v\n%s", path, err, out)
	}
}

// ArtifactDir is where UI tests write screenshots: $AUTHKEEPER_ARTIFACTS (set by `make test`) or a temp
// dir that is removed after the test.
func ArtifactDir(t testing.TB) string {
	if d := os.Getenv("AUTHKEEPER_ARTIFACTS"); d != "" {
		return d
	}
	return TempDir(t)
}

func (n Notification) String() string { return fmt.Sprintf("%s: %s — %s", n.App, n.Summary, n.Body) }
