//go:build !headless

package tray

import (
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/authkeeper/authkeeper/app/engine"
)

// statusColumns head the text columns of the Status window's table; statusWidths are their widths.
// The table shows the row's buttons after the first actionsAfter of them.
var (
	statusColumns = []string{"Server", "State", "Token expires", "Last refresh", "Next refresh", "Deferred", "Notes"}
	statusWidths  = []float32{120, 230, 150, 250, 180, 80, 420}
)

// actionsAfter is how many text columns come before the buttons: the server and its state, so that
// what a row needs and the button that does it are read together.
const actionsAfter = 2

// rowActions is what a server's row in the Status window offers and how it looks.
type rowActions struct {
	Attention  bool // the server needs the user: the row stands out
	SignIn     bool // "Sign in" is shown (only when it is needed)
	CanRefresh bool // "Refresh now" is enabled (it is always shown, so the buttons line up)
}

// actionsFor is the row for st. "Sign in" and "Refresh now" are the menu's items and follow its rules
// (canSignIn, canRefresh); "Copy proxy URL" is always there.
func actionsFor(st engine.ServerStatus) rowActions {
	return rowActions{
		Attention:  needsUser(st.State),
		SignIn:     canSignIn(st) && needsUser(st.State),
		CanRefresh: canSignIn(st) && canRefresh(st.State),
	}
}

// statusSummary is the line on top of the Status window: how many servers need the user, and what else
// is wrong, else that all is well.
func statusSummary(s engine.Snapshot) string {
	if len(s.Servers) == 0 {
		return "No servers yet: choose “Add your first server…” in the tray menu"
	}
	need, others := troubles(s)
	var parts []string
	switch n := len(need); {
	case n == 1:
		parts = append(parts, "1 server needs you: "+need[0])
	case n > 1:
		parts = append(parts, fmt.Sprintf("%d servers need you: %s", n, names(need)))
	}
	parts = append(parts, others...)
	if len(parts) == 0 {
		return allWell(s)
	}
	out := strings.Join(parts, "; ")
	return strings.ToUpper(out[:1]) + out[1:]
}

// statusRows is the table for snapshot s: one row per server, cells as statusColumns name them.
func statusRows(s engine.Snapshot, now time.Time) [][]string {
	rows := make([][]string, 0, len(s.Servers))
	for _, st := range s.Servers {
		expires := "—"
		if st.NoExpiry {
			expires = "never (no expiry)"
		} else if !st.Expiry.IsZero() {
			expires = strings.TrimPrefix(expiresText(st.Expiry, now), "expires ") + st.Expiry.Local().Format(" (15:04)")
		}
		last := "never"
		if !st.Last.At.IsZero() {
			last = span(now.Sub(st.Last.At)) + " ago, " + string(st.Last.Trigger)
			if st.Last.Outcome != "" && st.Last.Outcome != engine.OutcomeOK {
				last += ": " + string(st.Last.Outcome)
			}
		}
		next := "—"
		if !st.Next.IsZero() {
			next = "in " + span(max(st.Next.Sub(now), 0))
			if st.NextTrigger != "" {
				next += " (" + string(st.NextTrigger) + ")"
			}
		}
		deferred := "no"
		if st.Deferred {
			deferred = "yes"
		}
		rows = append(rows, []string{st.Name, stateText(st.State), expires, last, next, deferred, notes(st.Warnings)})
	}
	return rows
}

// notes is the Notes cell: what authkeeper tolerated from the server's authorization server (an
// issuer mismatch, PKCE assumed, …), so that nothing it relaxed goes unseen.
func notes(ws []engine.Warning) string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.Message
	}
	return strings.Join(out, " ")
}

// eventLine renders one event for the Status window's list.
func eventLine(ev engine.Event) string {
	var b strings.Builder
	b.WriteString(ev.Time.Local().Format("15:04:05  "))
	if ev.Server != "" {
		b.WriteString(ev.Server + "  ")
	}
	b.WriteString(strings.ReplaceAll(string(ev.Kind), "_", " "))
	if ev.Trigger != "" {
		fmt.Fprintf(&b, " (%s)", ev.Trigger)
	}
	if ev.Outcome != "" && ev.Outcome != engine.OutcomeOK {
		b.WriteString(": " + string(ev.Outcome))
	}
	if ev.Message != "" {
		b.WriteString(" — " + ev.Message)
	}
	return b.String()
}

// showStatus opens the Status window, or brings it to the front. UI goroutine.
func (u *ui) showStatus() {
	if u.status == nil {
		u.status = newStatusWindow(u.a, u.do)
		u.status.w.SetOnClosed(func() { u.status = nil })
		// A fresh snapshot: the last redraw may be a moment behind (a second launch right after an event).
		u.status.update(u.eng.Snapshot(), u.recent, u.cfg.Clock.Now())
	}
	u.status.w.Show()
	u.status.w.RequestFocus()
}

// statusWindow shows every server's state, with its buttons, and the recent events; the controller
// calls update on every redraw, so it is live. Its buttons call do with the menu's items, so a button
// does exactly what the menu item of the same name does. Fields are owned by the UI goroutine.
type statusWindow struct {
	w        fyne.Window
	do       func(item)
	alert    *widget.Icon // before the summary while a server needs the user
	summary  *widget.Label
	table    *widget.Table
	events   *widget.List
	servers  []engine.ServerStatus
	rows     [][]string
	lines    []string      // newest first
	cells    []*statusCell // every cell the table made (it reuses them), for tests to find a row's buttons
	actWidth float32
}

func newStatusWindow(a fyne.App, do func(item)) *statusWindow {
	s := &statusWindow{w: a.NewWindow("authkeeper — Status"), do: do, summary: widget.NewLabel(""),
		alert: widget.NewIcon(theme.NewWarningThemedResource(theme.WarningIcon()))}
	s.table = widget.NewTable(
		func() (int, int) { return len(s.rows), len(statusColumns) + 1 },
		func() fyne.CanvasObject {
			c := newStatusCell(s.act)
			s.cells = append(s.cells, c)
			return c
		},
		func(id widget.TableCellID, o fyne.CanvasObject) {
			row, col := s.servers[id.Row], id.Col
			c, a := o.(*statusCell), actionsFor(s.servers[id.Row])
			switch {
			case col == actionsAfter:
				c.showActions(row.Name, a)
			case col > actionsAfter:
				c.showText(row.Name, s.rows[id.Row][col-1], a.Attention, cellPlain)
			default:
				c.showText(row.Name, s.rows[id.Row][col], a.Attention, []cellKind{cellName, cellState}[col])
			}
		})
	s.table.ShowHeaderRow = true
	s.table.CreateHeader = func() fyne.CanvasObject {
		l := widget.NewLabel("")
		l.TextStyle.Bold = true
		return l
	}
	s.table.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		switch {
		case id.Col == actionsAfter:
			o.(*widget.Label).SetText("")
		case id.Col > actionsAfter:
			o.(*widget.Label).SetText(statusColumns[id.Col-1])
		case id.Col >= 0:
			o.(*widget.Label).SetText(statusColumns[id.Col])
		}
	}
	s.actWidth = newStatusCell(nil).acts.MinSize().Width
	for i, w := range statusWidths {
		if i >= actionsAfter {
			i++
		}
		s.table.SetColumnWidth(i, w)
	}
	s.table.SetColumnWidth(actionsAfter, s.actWidth)
	s.events = widget.NewList(
		func() int { return len(s.lines) },
		func() fyne.CanvasObject { return widget.NewLabel("") },
		func(i widget.ListItemID, o fyne.CanvasObject) { o.(*widget.Label).SetText(s.lines[i]) })
	recent := widget.NewLabel("Recent events (since the app started)")
	recent.TextStyle.Bold = true
	split := container.NewVSplit(s.table, container.NewBorder(recent, nil, nil, nil, s.events))
	split.SetOffset(0.45)
	top := container.NewBorder(nil, nil, s.alert, nil, s.summary)
	s.w.SetContent(container.NewBorder(top, nil, nil, nil, split))
	s.w.Resize(fyne.NewSize(min(1030+s.actWidth, 1280), 560))
	return s
}

// act runs a row's button: the menu's item for the server the row shows when the button is tapped
// (the table reuses cells for other rows as it redraws).
func (s *statusWindow) act(it item) {
	if s.do != nil {
		s.do(it)
	}
}

// update shows snapshot snap and the recent events (oldest first).
func (s *statusWindow) update(snap engine.Snapshot, recent []engine.Event, now time.Time) {
	summary := statusSummary(snap)
	need, _ := troubles(snap)
	s.summary.TextStyle.Bold = len(need) > 0
	if len(need) > 0 {
		s.summary.Importance = widget.WarningImportance
		s.alert.Show()
	} else {
		s.summary.Importance = widget.MediumImportance
		s.alert.Hide()
	}
	if snap.ProxyURL != "" {
		summary += "   ·   proxy " + snap.ProxyURL + "/mcp/<server>"
	}
	s.summary.SetText(summary)
	s.servers = snap.Servers
	s.rows = statusRows(snap, now)
	s.lines = s.lines[:0]
	for i := len(recent) - 1; i >= 0; i-- {
		s.lines = append(s.lines, eventLine(recent[i]))
	}
	s.table.Refresh()
	s.events.Refresh()
}
