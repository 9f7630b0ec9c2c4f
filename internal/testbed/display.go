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
}

// Notification is one org.freedesktop.Notifications.Notify call seen on the bus.
type Notification struct {
	App, Summary, Body string
}

// NewDisplay starts Xvfb, a session bus, dunst and the monitor; sets DISPLAY and
// DBUS_SESSION_BUS_ADDRESS for the test (so it must not be parallel); and stops them all in cleanup.
func NewDisplay(t testing.TB) *Display {
	t.Helper()
	linuxOnly(t, "a virtual display (Xvfb, dunst, D-Bus)")
	Need(t, "Xvfb", "dunst", "dbus-daemon")
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
	conf := filepath.Join(bus.Dir, "dunstrc")
	// Short timeouts keep dunst's queue from growing during a burst; the monitor sees every call anyway.
	if err := os.WriteFile(conf, []byte("[global]\n    timeout = 2\n"), 0o600); err != nil {
		t.Fatalf("display: %v", err)
	}
	dn := exec.Command("dunst", "-config", conf)
	dn.Env = append(os.Environ(), "DISPLAY="+d.Name)
	d.daemon = StartProcess(t, "dunst", dn)
	bus.WaitName(t, "org.freedesktop.Notifications", 10*time.Second, d.daemon.Done())
	return d
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
			if m.Type != dbus.TypeMethodCall || len(m.Body) < 5 {
				continue
			}
			n := Notification{}
			n.App, _ = m.Body[0].(string)
			n.Summary, _ = m.Body[3].(string)
			n.Body, _ = m.Body[4].(string)
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
