//go:build !headless

package tray

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// silentServer accepts connections and never answers until the test ends: a host that hangs.
func silentServer(t *testing.T) (url string, accepted <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 16)
	done := make(chan struct{})
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				<-done
				return
			}
			conns = append(conns, c)
			ch <- struct{}{}
		}
	}()
	t.Cleanup(func() { l.Close(); close(done) })
	return "http://" + l.Addr().String() + "/mcp", ch
}

func newTestAddWindow(t *testing.T, b *bench) (*addWindow, *uiLoop) {
	t.Helper()
	a := test.NewTempApp(t)
	l := newUILoop()
	w := newAddWindow(context.Background(), a, b.eng, engine.SystemClock{})
	w.post, w.steps = l.post, l.step
	t.Cleanup(func() { w.cancel(); w.w.Close() })
	w.w.Show()
	return w, l
}

// TestAddWindowProbesAsYouTypeAndDropsFindingsForAURLNoLongerShown types a URL whose host hangs, moves
// the field on while that probe runs, and checks the late result is dropped (the field keeps saying it
// is checking the new URL), then that a real MCP server is found to need OAuth sign-in.
func TestAddWindowProbesAsYouTypeAndDropsFindingsForAURLNoLongerShown(t *testing.T) {
	b := newBench(t, nil)
	w, steps := newTestAddWindow(t, b)
	hangA, acceptedA := silentServer(t)
	hangB, _ := silentServer(t)

	test.Type(w.url, hangA)
	<-acceptedA // the probe of A is in flight
	w.url.SetText(hangB)
	steps.wait(t, "probed "+hangA+" stale")
	if got := w.finding.Text; got != "Checking "+hangB+"…" {
		t.Errorf("after A's late result the finding is %q; want it still checking B", got)
	}

	w.url.SetText(b.srv.URL)
	steps.wait(t, "probed "+b.srv.URL+" shown")
	if !strings.HasPrefix(w.finding.Text, "OAuth sign-in: ") || !w.signIn.Visible() || w.tokenBox.Visible() {
		t.Errorf("finding %q, sign-in button visible %v, token fields visible %v", w.finding.Text, w.signIn.Visible(), w.tokenBox.Visible())
	}
	if want := strings.ReplaceAll(strings.Split(strings.TrimPrefix(b.srv.URL, "http://"), "/")[0], ":", "-"); w.name.Text != want {
		t.Errorf("suggested name %q", w.name.Text)
	}
	// Twice: wrapped labels measure their height at the width the first layout gave them.
	w.w.Resize(fyne.NewSize(520, 379))
	w.w.Resize(fyne.NewSize(520, 380))
	capture(t, w.w.Canvas(), "add-server-window.png")

	closed := "http://127.0.0.1:1/mcp"
	w.url.SetText(closed)
	steps.wait(t, "probed "+closed+" shown")
	if !strings.HasPrefix(w.finding.Text, "Unreachable: ") || w.signIn.Visible() || w.add.Visible() {
		t.Errorf("unreachable server: finding %q, buttons %v %v", w.finding.Text, w.signIn.Visible(), w.add.Visible())
	}
}

// TestAddWindowLeavesNothingWhenSignInFailsThenSignsIn pastes the server's URL with spaces around it
// and without its scheme (the window says which URL it uses and what happens next), denies consent in
// the browser (nothing may be saved), then signs in for real through the browser and the loopback
// callback.
func TestAddWindowLeavesNothingWhenSignInFailsThenSignsIn(t *testing.T) {
	b := newBench(t, nil)
	w, steps := newTestAddWindow(t, b)
	w.url.SetText("  " + strings.TrimPrefix(b.srv.URL, "http://") + " \n")
	steps.wait(t, "probed "+b.srv.URL+" shown")
	if w.urlItem.HintText != "Using "+b.srv.URL {
		t.Errorf("URL hint %q", w.urlItem.HintText)
	}
	as := strings.TrimPrefix(b.as.Issuer, "http://")
	as = strings.TrimPrefix(as, "https://")
	if want := "Next: choose Sign in and your browser opens to sign in to " + strings.SplitN(as, "/", 2)[0] + "."; !strings.HasPrefix(w.next.Text, want) {
		t.Errorf("next step %q, want it to start %q", w.next.Text, want)
	}
	w.name.SetText("bench")

	b.browser.SetOptions(testbed.BrowserOptions{Deny: true})
	test.Tap(w.signIn)
	steps.wait(t, "added")
	if !strings.HasPrefix(w.status.Text, "Could not add bench: ") {
		t.Errorf("status after a denied sign-in: %q", w.status.Text)
	}
	if _, err := b.eng.Server("bench"); !errors.Is(err, engine.ErrUnknownServer) {
		t.Errorf("a failed sign-in left the server configured: %v", err)
	}
	if n := len(b.eng.Snapshot().Servers); n != 0 {
		t.Errorf("snapshot lists %d servers after a failed sign-in", n)
	}

	b.browser.SetOptions(testbed.BrowserOptions{})
	test.Tap(w.signIn)
	steps.wait(t, "added")
	if !strings.HasPrefix(w.status.Text, "Added bench.") {
		t.Fatalf("status: %q", w.status.Text)
	}
	s := b.eng.Snapshot()
	if len(s.Servers) != 1 || s.Servers[0].State != engine.StateFresh || !s.Servers[0].Expiry.After(time.Now()) {
		t.Errorf("engine after add: %+v", s.Servers)
	}
	if srv, err := b.eng.Server("bench"); err != nil || srv.URL != b.srv.URL {
		t.Errorf("server saved with URL %q (%v), want %q", srv.URL, err, b.srv.URL)
	}
}

// TestAddWindowDeviceCodeShowsTheCodeAndCompletes adds a server with the device flow: the window shows
// the code, the scripted browser enters it at the verification page, and the server is added.
func TestAddWindowDeviceCodeShowsTheCodeAndCompletes(t *testing.T) {
	b := newBench(t, nil)
	w, steps := newTestAddWindow(t, b)
	w.url.SetText(b.srv.URL)
	steps.wait(t, "probed "+b.srv.URL+" shown")
	if !w.useDevice.Visible() {
		t.Fatal("no device code button although the AS offers the device flow")
	}
	w.name.SetText("viadevice")
	test.Tap(w.useDevice)
	steps.wait(t, "device")
	code, page := w.device.code.Text, w.device.link.Text
	if code == "" || !w.device.box.Visible() || !strings.HasPrefix(page, b.as.Issuer) {
		t.Fatalf("device box: code %q page %q visible %v", code, page, w.device.box.Visible())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.browser.ApproveDevice(ctx, page, code); err != nil {
		t.Fatal(err)
	}
	steps.wait(t, "added")
	if _, err := b.eng.Server("viadevice"); err != nil || !strings.HasPrefix(w.status.Text, "Added viadevice.") {
		t.Errorf("after device approval: %v, status %q", err, w.status.Text)
	}
}
