//go:build !headless

package tray

import (
	"context"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/authkeeper/authkeeper/app/engine"
)

// recordingApp is fyne's test app with its notifications delivered on a channel (the test app keeps
// only the last one, unguarded).
type recordingApp struct {
	fyne.App
	notes chan *fyne.Notification
}

func (r *recordingApp) SendNotification(n *fyne.Notification) { r.notes <- n }

// gatedOpener hands the authorization URL to the test instead of a browser, so the test decides when
// the user "finishes" in the browser.
type gatedOpener chan string

func (g gatedOpener) Open(u string) error { g <- u; return nil }

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("no %s within 30s", what)
	}
	panic("unreachable")
}

// click runs the action of the menu item at path (label prefixes, top level first).
func click(t *testing.T, m *fyne.Menu, path ...string) {
	t.Helper()
	items := m.Items
	for i, p := range path {
		var found *fyne.MenuItem
		for _, it := range items {
			if strings.HasPrefix(it.Label, p) {
				found = it
				break
			}
		}
		if found == nil {
			t.Fatalf("no menu item %q in %v", p, path[:i])
		}
		if i == len(path)-1 {
			found.Action()
			return
		}
		items = found.ChildMenu.Items
	}
}

// TestTrayFollowsTheEngineNotifiesAndSignsInAgainOnce runs the controller over a real engine, AS and
// MCP server: the menu shows the server's lifetime; "Sign in again" clicked twice runs one flow in one
// window, which the browser completes ("Signed in to bench"); "Refresh now" brings "Refreshed auth for
// bench" and updates the open Status window; with Notifications off the next refresh is silent.
func TestTrayFollowsTheEngineNotifiesAndSignsInAgainOnce(t *testing.T) {
	gate := make(gatedOpener, 4)
	b := newBench(t, gate)
	ctx := context.Background()
	go func() { _ = b.browser.Open(<-gate) }()
	if err := b.eng.Add(ctx, engine.AddRequest{Name: "bench", URL: b.srv.URL}); err != nil {
		t.Fatal(err)
	}
	rec := &recordingApp{App: test.NewTempApp(t), notes: make(chan *fyne.Notification, 16)}
	l := newUILoop()
	u := newUI(ctx, rec, b.eng, options{Post: l.post, Steps: l.step, NotifyWindow: 300 * time.Millisecond})
	t.Cleanup(u.close)
	if got := u.menu.Items[2].Label; !strings.HasPrefix(got, "bench — fresh, expires in 59 min") {
		t.Errorf("server item %q", got)
	}

	click(t, u.menu, "bench —", "Sign in again")
	authURL := receive(t, gate, "browser opening")
	first := u.signIns["bench"]
	click(t, u.menu, "bench —", "Sign in again")
	if len(u.signIns) != 1 || u.signIns["bench"] != first {
		t.Fatalf("second click: %d sign-in windows", len(u.signIns))
	}
	if err := b.browser.Open(authURL); err != nil {
		t.Fatal(err)
	}
	l.wait(t, "finished")
	if len(u.signIns) != 0 || len(gate) != 0 {
		t.Errorf("after sign-in: %d windows open, %d more browser openings", len(u.signIns), len(gate))
	}
	if n := receive(t, rec.notes, "sign-in notification"); n.Title != "Signed in to bench" {
		t.Errorf("notification %q", n.Title)
	}

	u.showStatus()
	click(t, u.menu, "bench —", "Refresh now")
	if n := receive(t, rec.notes, "refresh notification"); n.Title != "Refreshed auth for bench" {
		t.Errorf("notification %q", n.Title)
	}
	for !strings.HasSuffix(u.status.rows[0][3], "ago, user") {
		l.wait(t, "render")
	}

	click(t, u.menu, "Notifications")
	if b.eng.Prefs().Notifications || u.menu.Items[len(u.menu.Items)-4].Checked {
		t.Fatalf("Notifications still on after the click")
	}
	click(t, u.menu, "bench —", "Refresh now")
	select {
	case n := <-rec.notes:
		t.Errorf("notification %q with notifications off", n.Title)
	case <-time.After(4 * u.cfg.NotifyWindow): // a refresh notice would have come by now
	}

	click(t, u.menu, "Agent turn busy")
	l.wait(t, "render")
	if ls := b.eng.Busy().Leases(); len(ls) != 1 || ls[0].ID != trayBusyLease {
		t.Errorf("leases after the busy toggle: %+v", ls)
	}
}
