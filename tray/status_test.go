//go:build !headless

package tray

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"fyne.io/fyne/v2/test"

	"github.com/authkeeper/authkeeper/app/engine"
)

func TestStatusRowsSayStateExpiryLastAndNextRefreshAndDeferral(t *testing.T) {
	s, _ := fixture()
	in := func(d time.Duration) string { return now.Add(d).Local().Format(" (15:04)") }
	want := [][]string{
		{"github", "fresh", "in 42 min" + in(42*time.Minute), "18 min ago, schedule", "in 27 min (schedule)", "no", ""},
		{"linear", "needs sign-in", "—", "3 min ago, schedule: invalid_grant", "—", "no", ""},
		{"notion", "refresh deferred (agent busy)", "in 6 min" + in(6*time.Minute), "54 min ago, sign-in", "in 4 min (deadline)", "yes", ""},
		{"sentry", "refresh failing, retrying", "in 25 min" + in(25*time.Minute), "20 s ago, retry: transient", "in 40 s (retry)", "no",
			"Signed in with https://auth.example.com, not the advertised https://mcp.example.com."},
	}
	if diff := cmp.Diff(want, statusRows(s, now)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

// TestServerWithoutExpirySaysSoInTheMenuAndTheStatusWindow: a token with no expiry (GitHub OAuth
// apps) is shown as such, not as "expired 56 years ago" nor with no word at all.
func TestServerWithoutExpirySaysSoInTheMenuAndTheStatusWindow(t *testing.T) {
	st := engine.ServerStatus{Name: "github", State: engine.StateFresh, NoExpiry: true}
	if got, want := serverLabel(st, now), "github — fresh, no expiry"; got != want {
		t.Errorf("menu label %q, want %q", got, want)
	}
	rows := statusRows(engine.Snapshot{Servers: []engine.ServerStatus{st}}, now)
	if got := rows[0][2]; got != "never (no expiry)" {
		t.Errorf("Token expires cell %q", got)
	}
	st.State = engine.StateNeedsSignIn
	if got, want := serverLabel(st, now), "github — needs sign-in"; got != want {
		t.Errorf("menu label once refused %q, want %q", got, want)
	}
}

// TestStatusWindowShowsTheTableAndNewestEventsFirstAndUpdates drives the window with fyne's test app:
// the cells on the canvas are the snapshot's, the newest event is first, a second update replaces
// both, and the screenshot of the first state goes to the artifacts.
func TestStatusWindowShowsTheTableAndNewestEventsFirstAndUpdates(t *testing.T) {
	a := test.NewTempApp(t)
	s, evs := fixture()
	w := newStatusWindow(a)
	t.Cleanup(w.w.Close)
	w.update(s, evs, now)
	w.w.Show()

	markup := test.RenderToMarkup(w.w.Canvas())
	for _, cell := range []string{"Token expires", "needs sign-in", "54 min ago, sign-in", "in 4 min (deadline)",
		"linear needs you to sign in", "sentry  degraded (retry): transient — token endpoint answered 503"} {
		if !strings.Contains(markup, cell) {
			t.Errorf("window does not show %q", cell)
		}
	}
	if !strings.Contains(w.lines[0], "sentry  degraded") || !strings.Contains(w.lines[len(w.lines)-1], "notion  signed in (user)") {
		t.Errorf("events not newest first: %q", w.lines)
	}
	capture(t, w.w.Canvas(), "status-window.png")

	s.Servers[1].State = engine.StateFresh
	s.Servers[1].Expiry = now.Add(time.Hour)
	w.update(s, append(evs, engine.Event{Time: now, Kind: engine.EventSignedIn, Server: "linear", Trigger: "user", Outcome: "ok"}), now)
	if w.rows[1][1] != "fresh" || !strings.HasPrefix(w.lines[0], now.Local().Format("15:04:05")+"  linear  signed in") {
		t.Errorf("after update: row %q, first event %q", w.rows[1], w.lines[0])
	}
	if markup := test.RenderToMarkup(w.w.Canvas()); strings.Contains(markup, "needs sign-in") {
		t.Errorf("window still shows needs sign-in after the update")
	}
}
