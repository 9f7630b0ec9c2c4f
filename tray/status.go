//go:build !headless

package tray

import (
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/authkeeper/authkeeper/app/engine"
)

// statusColumns head the Status window's table; statusWidths are their widths.
var (
	statusColumns = []string{"Server", "State", "Token expires", "Last refresh", "Next refresh", "Deferred", "Notes"}
	statusWidths  = []float32{120, 210, 150, 250, 180, 80, 420}
)

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
		u.status = newStatusWindow(u.a)
		u.status.w.SetOnClosed(func() { u.status = nil })
		// A fresh snapshot: the last redraw may be a moment behind (a second launch right after an event).
		u.status.update(u.eng.Snapshot(), u.recent, u.cfg.Clock.Now())
	}
	u.status.w.Show()
	u.status.w.RequestFocus()
}

// statusWindow shows every server's state and the recent events; the controller calls update on every
// redraw, so it is live. Fields are owned by the UI goroutine.
type statusWindow struct {
	w       fyne.Window
	summary *widget.Label
	table   *widget.Table
	events  *widget.List
	rows    [][]string
	lines   []string // newest first
}

func newStatusWindow(a fyne.App) *statusWindow {
	s := &statusWindow{w: a.NewWindow("authkeeper — Status"), summary: widget.NewLabel("")}
	s.table = widget.NewTable(
		func() (int, int) { return len(s.rows), len(statusColumns) },
		func() fyne.CanvasObject { return widget.NewLabel("") },
		func(id widget.TableCellID, o fyne.CanvasObject) { o.(*widget.Label).SetText(s.rows[id.Row][id.Col]) })
	s.table.ShowHeaderRow = true
	s.table.CreateHeader = func() fyne.CanvasObject {
		l := widget.NewLabel("")
		l.TextStyle.Bold = true
		return l
	}
	s.table.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		if id.Col >= 0 {
			o.(*widget.Label).SetText(statusColumns[id.Col])
		}
	}
	for i, w := range statusWidths {
		s.table.SetColumnWidth(i, w)
	}
	s.events = widget.NewList(
		func() int { return len(s.lines) },
		func() fyne.CanvasObject { return widget.NewLabel("") },
		func(i widget.ListItemID, o fyne.CanvasObject) { o.(*widget.Label).SetText(s.lines[i]) })
	recent := widget.NewLabel("Recent events (since the app started)")
	recent.TextStyle.Bold = true
	split := container.NewVSplit(s.table, container.NewBorder(recent, nil, nil, nil, s.events))
	split.SetOffset(0.45)
	s.w.SetContent(container.NewBorder(s.summary, nil, nil, nil, split))
	s.w.Resize(fyne.NewSize(1030, 560))
	return s
}

// update shows snapshot snap and the recent events (oldest first).
func (s *statusWindow) update(snap engine.Snapshot, recent []engine.Event, now time.Time) {
	s.summary.SetText(headline(snap) + "   ·   proxy " + snap.ProxyURL + "/mcp/<server>")
	s.rows = statusRows(snap, now)
	s.lines = s.lines[:0]
	for i := len(recent) - 1; i >= 0; i-- {
		s.lines = append(s.lines, eventLine(recent[i]))
	}
	s.table.Refresh()
	s.events.Refresh()
}
