//go:build linux && !headless

package tray

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// TestSignInActionOnANotificationSignsInOnceThroughTheDaemon runs the controller with desktop
// notifications on a virtual desktop whose daemon (dunst) shows actions, over a real engine, AS and
// MCP server. A refresh the AS refuses with invalid_grant brings "bench needs you to sign in again"
// with a Sign in action (also the default action, a click on the notification). The daemon invoking
// it — a click, then the Sign in entry of its context menu — opens one sign-in window and the browser
// once; the browser completes the sign-in, and "Signed in to bench" carries no action. In the next
// episode, a sign-in from the menu withdraws the notification that asked for it.
func TestSignInActionOnANotificationSignsInOnceThroughTheDaemon(t *testing.T) {
	display := testbed.NewDisplay(t) // first: it sets DISPLAY and DBUS_SESSION_BUS_ADDRESS
	gate := make(gatedOpener, 4)
	b := newBench(t, gate)
	ctx := context.Background()
	go func() { _ = b.browser.Open(<-gate) }() // the sign-in that adds the server
	if err := b.eng.Add(ctx, engine.AddRequest{Name: "bench", URL: b.srv.URL}); err != nil {
		t.Fatal(err)
	}
	l := newUILoop()
	u := newUI(ctx, test.NewTempApp(t), b.eng, options{Post: l.post, Steps: l.step, DesktopNotices: true})
	t.Cleanup(u.close)

	b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 400,
		Body: `{"error":"invalid_grant","error_description":"grant request is invalid"}`})
	if err := b.eng.Refresh(ctx, "bench", "user"); err == nil {
		t.Fatal("refresh succeeded against a token endpoint that answers invalid_grant")
	}
	n := display.WaitNotification(t, "bench needs you to sign in again", 15*time.Second)
	if !slices.Equal(n.Actions, []string{"default", "Sign in", "sign-in", "Sign in"}) {
		t.Errorf("actions %q, want the Sign in action, also as the default", n.Actions)
	}
	if want := "Click “Sign in” to sign in again."; len(n.Body) < len(want) || n.Body[:len(want)] != want {
		t.Errorf("body %q, want it to start %q", n.Body, want)
	}
	// The daemon answered Notify once our notifier knows the id; only then can a click reach us.
	bus := u.out.d.(*busNotifier)
	for deadline := time.Now().Add(10 * time.Second); bus.pending() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the notifier never learnt the notification's id")
		}
	}
	notificationScreenshot(t, display)

	display.ClickNotification(t) // dunst: the "default" action
	authURL := l.run(t, gate, "browser opening")
	l.wait(t, "notification action") // the click's, posted before the browser opened
	first := u.signIns["bench"]
	if first == nil {
		t.Fatalf("no sign-in window after the click; windows: %v", u.signIns)
	}
	display.InvokeAction(t, "bench needs you to sign in again", "sign-in") // the Sign in button
	l.wait(t, "notification action")
	if len(u.signIns) != 1 || u.signIns["bench"] != first || len(gate) != 0 {
		t.Fatalf("second invocation: %d sign-in windows (same: %v), %d more browser openings",
			len(u.signIns), u.signIns["bench"] == first, len(gate))
	}

	if err := b.browser.Open(authURL); err != nil {
		t.Fatal(err)
	}
	l.wait(t, "finished")
	if len(u.signIns) != 0 || len(gate) != 0 {
		t.Errorf("after sign-in: %d windows open, %d more browser openings", len(u.signIns), len(gate))
	}
	if n := display.WaitNotification(t, "Signed in to bench", 15*time.Second); len(n.Actions) != 0 {
		t.Errorf("\"Signed in\" carries actions %q", n.Actions)
	}

	// The next episode, signed in from the menu instead: the sign-in withdraws the notification that
	// asked for it (dunst closed the first one when its context menu ran the action).
	waitPending := func(want int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); bus.pending() != want; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d notifications with an action shown, want %d", bus.pending(), want)
			}
		}
	}
	waitPending(0)
	b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 400, Body: `{"error":"invalid_grant"}`})
	if err := b.eng.Refresh(ctx, "bench", "user"); err == nil {
		t.Fatal("refresh succeeded against a token endpoint that answers invalid_grant")
	}
	waitPending(1)
	click(t, u.menu, "bench —", "Sign in again")
	if err := b.browser.Open(receive(t, gate, "browser opening")); err != nil {
		t.Fatal(err)
	}
	l.wait(t, "finished")
	waitPending(0)

	// A server removed while its notification is shown: the notification goes too, or its Sign in
	// would stay on screen for a server that no longer exists.
	b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 400, Body: `{"error":"invalid_grant"}`})
	if err := b.eng.Refresh(ctx, "bench", "user"); err == nil {
		t.Fatal("refresh succeeded against a token endpoint that answers invalid_grant")
	}
	waitPending(1)
	if err := b.eng.Remove(ctx, "bench"); err != nil {
		t.Fatal(err)
	}
	waitPending(0)
}

// TestDaemonWithoutActionsGetsTheMenuInstructions: notify-osd advertises no "actions" capability, so
// the notice goes without actions and its text says where in the menu to sign in; with no session bus
// at all the notice goes through the fyne app, with the same text.
func TestDaemonWithoutActionsGetsTheMenuInstructions(t *testing.T) {
	ev := engine.Event{Kind: engine.EventNeedsSignIn, Server: "bench", Message: "invalid_grant"}
	n, _ := noticeFor(ev)
	want := "Choose “Sign in again” under bench in the authkeeper menu. invalid_grant"

	t.Run("notify-osd", func(t *testing.T) {
		display := testbed.NewDisplayWith(t, testbed.DisplayOptions{Daemon: testbed.NotifyOSD})
		rec := make(recorder, 1)
		d := desktopNotifier(appNotifier{app: rec}, func(action, string) { t.Error("invoked") })
		t.Cleanup(d.close)
		d.deliver(n)
		got := display.WaitNotification(t, n.Title, 10*time.Second)
		if got.Body != want || len(got.Actions) != 0 {
			t.Errorf("notification %q with actions %q, want %q and none", got.Body, got.Actions, want)
		}
		if len(rec) != 0 {
			t.Errorf("also sent through the app")
		}
	})
	t.Run("no session bus", func(t *testing.T) {
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "nobus"))
		rec := make(recorder, 1)
		d := desktopNotifier(appNotifier{app: rec}, func(action, string) { t.Error("invoked") })
		t.Cleanup(d.close)
		d.deliver(n)
		select {
		case got := <-rec:
			if got.Title != n.Title || got.Content != want {
				t.Errorf("app notification %+v, want %q", got, want)
			}
		default:
			t.Error("nothing sent through the app without a session bus")
		}
	})
}

// recorder is a fyne app's notifications as a channel.
type recorder chan *fyne.Notification

func (r recorder) SendNotification(n *fyne.Notification) { r <- n }

// run runs posted UI work until ch delivers, and returns what it delivered.
func (l *uiLoop) run(t *testing.T, ch <-chan string, what string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case v := <-ch:
			return v
		case f := <-l.posts:
			f()
		case <-timeout:
			t.Fatalf("no %s within 30s; steps seen: %q", what, l.steps)
		}
	}
}

// notificationScreenshot saves the part of the screen dunst draws on: under docs/screenshots with
// AUTHKEEPER_SCREENSHOTS_UPDATE=1, else in the artifact directory. It fails when nothing is drawn.
func notificationScreenshot(t *testing.T, display *testbed.Display) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "screen.png")
	var img image.Image
	var area image.Rectangle
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		display.Screenshot(t, path)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = png.Decode(bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if area = drawnArea(img); !area.Empty() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dunst drew nothing within 10s")
		}
	}
	area = area.Inset(-16).Intersect(img.Bounds())
	crop := image.NewRGBA(image.Rectangle{Max: area.Size()})
	draw.Draw(crop, crop.Bounds(), img, area.Min, draw.Src)
	dir := testbed.ArtifactDir(t)
	if os.Getenv("AUTHKEEPER_SCREENSHOTS_UPDATE") == "1" {
		dir = filepath.Join("..", "docs", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "notification-sign-in.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, crop); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", f.Name())
}

// drawnArea is the bounding box of the pixels of img that are not black (Xvfb's empty screen).
func drawnArea(img image.Image) image.Rectangle {
	var r image.Rectangle
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if !isBlack(img.At(x, y)) {
				r = r.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return r
}

func isBlack(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return r == 0 && g == 0 && b == 0
}
