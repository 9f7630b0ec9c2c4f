//go:build !headless

package tray

import (
	"context"
	"image/color"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
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
	w := newStatusWindow(a, nil)
	t.Cleanup(w.w.Close)
	w.update(s, evs, now)
	w.w.Show()

	markup := test.RenderToMarkup(w.w.Canvas())
	for _, cell := range []string{"Token expires", "needs sign-in", "54 min ago, sign-in", "in 4 min (deadline)",
		"1 server needs you: linear; refresh failing for sentry", "proxy http://127.0.0.1:47615/mcp/",
		"sentry  degraded (retry): transient — token endpoint answered 503"} {
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

func TestStatusSummaryCountsTheServersThatNeedYou(t *testing.T) {
	srv := func(name string, st engine.State) engine.ServerStatus {
		return engine.ServerStatus{Name: name, State: st}
	}
	tests := []struct {
		name    string
		servers []engine.ServerStatus
		leases  []engine.Lease
		want    string
	}{
		{"no servers", nil, nil, "No servers yet: choose “Add your first server…” in the tray menu"},
		{"one fresh", []engine.ServerStatus{srv("a", engine.StateFresh)}, nil, "1 server, token fresh"},
		{"all fresh", []engine.ServerStatus{srv("a", engine.StateFresh), srv("b", engine.StateRefreshing), srv("c", engine.StateFresh)},
			nil, "All 3 servers fresh"},
		{"none needs you, one failing", []engine.ServerStatus{srv("a", engine.StateFresh), srv("b", engine.StateDegraded)},
			nil, "Refresh failing for b"},
		{"one needs you", []engine.ServerStatus{srv("a", engine.StateFresh), srv("b", engine.StateNeedsSignIn)},
			nil, "1 server needs you: b"},
		{"two need you, one failing, busy", []engine.ServerStatus{srv("a", engine.StateRevoked), srv("b", engine.StateDegraded),
			srv("c", engine.StateNeedsSignIn)}, []engine.Lease{{ID: "x"}},
			"2 servers need you: a and c; refresh failing for b; agent turn busy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusSummary(engine.Snapshot{Servers: tt.servers, Leases: tt.leases}); got != tt.want {
				t.Errorf("summary %q, want %q", got, tt.want)
			}
		})
	}
}

// TestStatusRowOffersSignInOnlyWhenNeededAndRefreshAsTheMenuDoes: "Sign in" shows only for an OAuth
// server that needs the user, "Refresh now" is enabled exactly where the menu enables it, and only
// the rows that need the user stand out.
func TestStatusRowOffersSignInOnlyWhenNeededAndRefreshAsTheMenuDoes(t *testing.T) {
	tests := []struct {
		state engine.State
		auth  string
		want  rowActions
	}{
		{engine.StateFresh, "oauth", rowActions{CanRefresh: true}},
		{engine.StateRefreshing, "", rowActions{CanRefresh: true}},
		{engine.StateDeferred, "oauth", rowActions{CanRefresh: true}},
		{engine.StateDegraded, "oauth", rowActions{CanRefresh: true}},
		{engine.StateNeedsSignIn, "oauth", rowActions{Attention: true, SignIn: true}},
		{engine.StateRevoked, "oauth", rowActions{Attention: true, SignIn: true}},
		{engine.StateDisabled, "oauth", rowActions{}},
		{engine.StateFresh, "static-token", rowActions{}},
		{engine.StateNeedsSignIn, "static-token", rowActions{Attention: true}},
		{engine.StateFresh, "no-auth", rowActions{}},
	}
	for _, tt := range tests {
		t.Run(string(tt.state)+"/"+tt.auth, func(t *testing.T) {
			st := engine.ServerStatus{Name: "x", State: tt.state, Auth: tt.auth}
			if diff := cmp.Diff(tt.want, actionsFor(st)); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
			// The menu's "Refresh now" is enabled exactly when the window's is.
			for _, it := range menuModel(engine.Snapshot{Servers: []engine.ServerStatus{st}}, keychain.Prefs{}, now)[2].Children {
				if it.Action == actRefresh && it.Disabled == tt.want.CanRefresh {
					t.Errorf("menu's Refresh now disabled=%v, window's enabled=%v", it.Disabled, tt.want.CanRefresh)
				}
			}
		})
	}
}

// actionsCell is the cell that shows server's buttons in w, as the table drew it.
func actionsCell(t *testing.T, w *statusWindow, server string) *statusCell {
	t.Helper()
	for _, c := range w.cells {
		if c.server == server && c.acts.Visible() {
			return c
		}
	}
	t.Fatalf("the Status window shows no buttons for %s", server)
	return nil
}

// stateCell is the cell that shows server's state in w.
func stateCell(t *testing.T, w *statusWindow, server string) *statusCell {
	t.Helper()
	for i, st := range w.servers {
		for _, c := range w.cells {
			if st.Name == server && c.server == server && c.text.Visible() && c.text.Text == w.rows[i][1] {
				return c
			}
		}
	}
	t.Fatalf("the Status window shows no state for %s", server)
	return nil
}

// TestStatusWindowHighlightsRowsThatNeedYouAndOffersSignInThere: the fixture's linear (needs sign-in)
// is tinted, bold and marked, and is the one row with a "Sign in" button; github's row is plain.
func TestStatusWindowHighlightsRowsThatNeedYouAndOffersSignInThere(t *testing.T) {
	a := test.NewTempApp(t)
	s, evs := fixture()
	w := newStatusWindow(a, nil)
	t.Cleanup(w.w.Close)
	w.update(s, evs, now)
	w.w.Show()
	test.RenderToMarkup(w.w.Canvas()) // draws the table's cells

	for _, st := range s.Servers {
		c := actionsCell(t, w, st.Name)
		if got, want := c.signIn.Visible(), st.Name == "linear"; got != want {
			t.Errorf("%s: Sign in shown %v, want %v", st.Name, got, want)
		}
		if got, want := c.refresh.Disabled(), st.Name == "linear"; got != want {
			t.Errorf("%s: Refresh now disabled %v, want %v", st.Name, got, want)
		}
	}
	linear, github := stateCell(t, w, "linear"), stateCell(t, w, "github")
	if !linear.text.TextStyle.Bold || linear.text.Importance != widget.WarningImportance || !linear.sign.Visible() ||
		linear.bg.FillColor == color.Transparent {
		t.Errorf("linear's state does not stand out: bold %v, importance %v, sign %v, fill %v",
			linear.text.TextStyle.Bold, linear.text.Importance, linear.sign.Visible(), linear.bg.FillColor)
	}
	if github.text.TextStyle.Bold || github.text.Importance != widget.MediumImportance || github.sign.Visible() ||
		github.bg.FillColor != color.Transparent {
		t.Errorf("github's fresh state stands out")
	}
	if !w.alert.Visible() || !w.summary.TextStyle.Bold {
		t.Errorf("the summary does not stand out while linear needs you")
	}
}

// TestStatusWindowButtonsDoWhatTheMenuDoes taps the buttons of a real engine's server (real AS and MCP
// server): "Copy proxy URL" puts the server's proxy URL on the clipboard; "Refresh now" makes the
// engine refresh at the AS; once the AS refuses a refresh, the row offers "Sign in" (and no refresh),
// and two taps open one sign-in window and one browser, which completes the sign-in; the row is then
// plain again.
func TestStatusWindowButtonsDoWhatTheMenuDoes(t *testing.T) {
	gate := make(gatedOpener, 4)
	b := newBench(t, gate)
	ctx := context.Background()
	go func() { _ = b.browser.Open(<-gate) }()
	if err := b.eng.Add(ctx, engine.AddRequest{Name: "bench", URL: b.srv.URL}); err != nil {
		t.Fatal(err)
	}
	a := test.NewTempApp(t)
	l := newUILoop()
	u := newUI(ctx, a, b.eng, options{Post: l.post, Steps: l.step})
	t.Cleanup(u.close)
	u.showStatus()
	test.RenderToMarkup(u.status.w.Canvas())
	row := actionsCell(t, u.status, "bench")
	if row.signIn.Visible() || row.refresh.Disabled() {
		t.Errorf("fresh server: Sign in shown %v, Refresh now disabled %v", row.signIn.Visible(), row.refresh.Disabled())
	}

	test.Tap(row.copyURL)
	if got, want := a.Clipboard().Content(), b.eng.ProxyEndpoint("bench"); got != want || !strings.HasSuffix(got, "/mcp/bench") {
		t.Errorf("clipboard %q, want the proxy URL %q", got, want)
	}

	refreshes := b.as.TokenRequests(t, "refresh_token")
	test.Tap(row.refresh)
	l.until(t, "the row shows the refresh", func() bool { return strings.HasSuffix(u.status.rows[0][3], "ago, user") })
	if got := b.as.TokenRequests(t, "refresh_token"); got != refreshes+1 {
		t.Errorf("the AS saw %d refresh requests after Refresh now, want %d", got, refreshes+1)
	}

	// The AS refuses the next refresh: the grant is gone, and the row needs the user.
	b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 400, Body: `{"error":"invalid_grant","error_description":"revoked"}`})
	test.Tap(row.refresh)
	l.until(t, "the row needs sign-in", func() bool { return u.status.servers[0].State == engine.StateNeedsSignIn })
	test.RenderToMarkup(u.status.w.Canvas())
	row = actionsCell(t, u.status, "bench")
	if !row.signIn.Visible() || !row.refresh.Disabled() {
		t.Fatalf("signed out: Sign in shown %v, Refresh now disabled %v", row.signIn.Visible(), row.refresh.Disabled())
	}
	if got := u.status.summary.Text; !strings.HasPrefix(got, "1 server needs you: bench") {
		t.Errorf("summary %q", got)
	}
	test.Tap(row.signIn)
	authURL := receive(t, gate, "browser opening")
	first := u.signIns["bench"]
	test.Tap(row.signIn)
	if len(u.signIns) != 1 || first == nil || u.signIns["bench"] != first {
		t.Fatalf("two taps on Sign in: %d sign-in windows", len(u.signIns))
	}
	if err := b.browser.Open(authURL); err != nil {
		t.Fatal(err)
	}
	l.wait(t, "finished")
	if len(u.signIns) != 0 || len(gate) != 0 {
		t.Errorf("after sign-in: %d windows open, %d more browser openings", len(u.signIns), len(gate))
	}
	l.until(t, "the row is fresh again", func() bool { return u.status.servers[0].State == engine.StateFresh })
	test.RenderToMarkup(u.status.w.Canvas())
	if row := actionsCell(t, u.status, "bench"); row.signIn.Visible() {
		t.Errorf("Sign in still shown once signed in")
	}
}
