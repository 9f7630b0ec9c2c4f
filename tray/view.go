//go:build !headless

package tray

import (
	"fmt"
	"strings"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/keychain"
)

// This file is the pure half of the view: the snapshot → menu, icon and tooltip mapping, with no fyne
// in it, so every state can be table-tested. menu.go turns the model into fyne menus.

// action is what clicking a menu item asks of the engine (or of the tray's windows).
type action int

const (
	actNone action = iota
	actRefresh
	actSignIn
	actCopyProxy
	actCopyConfig
	actRemove
	actBusy
	actAdd
	actStatus
	actNotifications
	actStartAtLogin
	actQuit
)

// item is one tray menu entry.
type item struct {
	Label     string
	Action    action
	Server    string // the server the action applies to
	Check     bool   // a check item; Checked is its state
	Checked   bool
	Disabled  bool
	Separator bool
	Children  []item
}

// trayBusyLease is the id of the lease the "Agent turn busy" toggle takes.
const trayBusyLease = "tray"

// menuModel is the whole tray menu for snapshot s and preferences p, with lifetimes relative to now.
// Without servers its first item is the one thing to do, "Add your first server…", instead of a
// headline that would only say there is nothing.
func menuModel(s engine.Snapshot, p keychain.Prefs, now time.Time) []item {
	sep := item{Separator: true}
	add := item{Label: "Add server…", Action: actAdd}
	items := []item{{Label: headline(s), Disabled: true}, sep}
	if len(s.Servers) == 0 {
		add.Label = "Add your first server…"
		items = []item{add}
	}
	for _, st := range s.Servers {
		var children []item
		if canSignIn(st) {
			children = append(children,
				item{Label: "Refresh now", Action: actRefresh, Server: st.Name, Disabled: !canRefresh(st.State)},
				item{Label: "Sign in again", Action: actSignIn, Server: st.Name})
		}
		children = append(children,
			item{Label: "Copy proxy URL", Action: actCopyProxy, Server: st.Name},
			item{Label: "Copy client config", Action: actCopyConfig, Server: st.Name},
			item{Label: "Remove…", Action: actRemove, Server: st.Name})
		items = append(items, item{Label: serverLabel(st, now), Children: children})
	}
	items = append(items, sep,
		item{Label: busyLabel(s.Leases), Action: actBusy, Check: true, Checked: len(s.Leases) > 0},
		sep,
	)
	if len(s.Servers) > 0 {
		items = append(items, add)
	}
	return append(items,
		item{Label: "Status…", Action: actStatus},
		item{Label: "Notifications", Action: actNotifications, Check: true, Checked: p.Notifications},
		item{Label: "Start at login", Action: actStartAtLogin, Check: true, Checked: p.StartAtLogin},
		sep,
		item{Label: "Quit", Action: actQuit},
	)
}

// canRefresh: a refresh needs a grant; without one only "Sign in again" helps.
func canRefresh(s engine.State) bool {
	return s != engine.StateNeedsSignIn && s != engine.StateRevoked && s != engine.StateDisabled
}

// needsUser: the grant is gone (never there, signed out, refused or revoked) and only the user, by
// signing in, can bring it back. A disabled server waits for the user too, but by choice: nothing
// asks for attention.
func needsUser(s engine.State) bool {
	return s == engine.StateNeedsSignIn || s == engine.StateRevoked
}

// canSignIn: only OAuth servers can be signed in to; a static token or a server without auth has
// nothing to sign in to.
func canSignIn(st engine.ServerStatus) bool { return st.Auth == "" || st.Auth == "oauth" }

// serverLabel is "name — state, expires in 42 min".
func serverLabel(st engine.ServerStatus, now time.Time) string {
	l := st.Name + " — " + stateText(st.State)
	if needsUser(st.State) {
		return l
	}
	if st.NoExpiry {
		return l + ", no expiry"
	}
	if st.Expiry.IsZero() {
		return l
	}
	return l + ", " + expiresText(st.Expiry, now)
}

// stateText names a state for people.
func stateText(s engine.State) string {
	switch s {
	case engine.StateFresh:
		return "fresh"
	case engine.StateRefreshing:
		return "refreshing"
	case engine.StateDeferred:
		return "refresh deferred (agent busy)"
	case engine.StateDegraded:
		return "refresh failing, retrying"
	case engine.StateNeedsSignIn:
		return "needs sign-in"
	case engine.StateRevoked:
		return "access revoked, sign in again"
	case engine.StateDisabled:
		return "disabled"
	}
	return string(s)
}

// expiresText is "expires in 42 min" or "expired 3 min ago".
func expiresText(expiry, now time.Time) string {
	d := expiry.Sub(now)
	if d < 0 {
		return "expired " + span(-d) + " ago"
	}
	return "expires in " + span(d)
}

// span renders a duration coarsely, the way a person reads a clock: "40 s", "42 min", "2 h 5 min",
// "3 days".
func span(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d h %d min", h, m)
	}
	return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
}

// busyLabel says how many leases hold refreshes back when agents (not only this toggle) set them.
func busyLabel(leases []engine.Lease) string {
	agents := 0
	for _, l := range leases {
		if l.ID != trayBusyLease {
			agents++
		}
	}
	switch {
	case agents == 0:
		return "Agent turn busy"
	case len(leases) == 1:
		return "Agent turn busy (1 lease held)"
	}
	return fmt.Sprintf("Agent turn busy (%d leases held)", len(leases))
}

// iconState is which tray icon shows.
type iconState int

const (
	iconFresh     iconState = iota // every server has a valid token
	iconBusy                       // an agent turn is busy: refreshes wait
	iconAttention                  // a server needs the user to sign in
	iconError                      // refreshes fail (retrying)
	iconEmpty                      // no server is configured yet
)

// iconFor picks the icon: no servers first (then nothing can need the user or fail, and a busy lease
// holds back nothing), then what needs the user, then failures, then busy.
func iconFor(s engine.Snapshot) iconState {
	if len(s.Servers) == 0 {
		return iconEmpty
	}
	out := iconFresh
	if len(s.Leases) > 0 {
		out = iconBusy
	}
	for _, st := range s.Servers {
		switch st.State {
		case engine.StateNeedsSignIn, engine.StateRevoked:
			return iconAttention
		case engine.StateDegraded:
			out = iconError
		case engine.StateDeferred:
			if out != iconError {
				out = iconBusy
			}
		}
	}
	return out
}

// headline is the one-line summary at the top of the menu and of the tooltip.
func headline(s engine.Snapshot) string {
	need, others := troubles(s)
	var parts []string
	if len(need) > 0 {
		parts = append(parts, names(need)+" need"+plural(len(need), "s", "")+" you to sign in")
	}
	if parts = append(parts, others...); len(parts) > 0 {
		return strings.Join(parts, "; ")
	}
	return allWell(s)
}

// allWell is the headline when nothing is wrong.
func allWell(s engine.Snapshot) string {
	switch len(s.Servers) {
	case 0:
		return "No servers yet"
	case 1:
		return "1 server, token fresh"
	}
	return fmt.Sprintf("All %d servers fresh", len(s.Servers))
}

// troubles lists the servers that need the user, and says in words what else is wrong (failing
// refreshes, deferred ones, a busy agent turn).
func troubles(s engine.Snapshot) (need []string, others []string) {
	var failing, deferred []string
	for _, st := range s.Servers {
		switch {
		case needsUser(st.State):
			need = append(need, st.Name)
		case st.State == engine.StateDegraded:
			failing = append(failing, st.Name)
		case st.State == engine.StateDeferred:
			deferred = append(deferred, st.Name)
		}
	}
	if len(failing) > 0 {
		others = append(others, "refresh failing for "+names(failing))
	}
	if len(deferred) > 0 {
		others = append(others, "refresh deferred for "+names(deferred))
	} else if len(s.Leases) > 0 {
		others = append(others, "agent turn busy")
	}
	return need, others
}

// tooltip is the tray icon's hover text: the headline, then one line per server; without servers, what
// to do first.
func tooltip(s engine.Snapshot, now time.Time) string {
	if len(s.Servers) == 0 {
		return "authkeeper: no servers yet. Open this menu and choose “Add your first server…”."
	}
	lines := []string{"authkeeper: " + headline(s)}
	for _, st := range s.Servers {
		lines = append(lines, serverLabel(st, now))
	}
	return strings.Join(lines, "\n")
}

// names lists up to three names in full, then "X, Y and 2 more".
func names(n []string) string {
	switch {
	case len(n) == 1:
		return n[0]
	case len(n) <= 3:
		return strings.Join(n[:len(n)-1], ", ") + " and " + n[len(n)-1]
	}
	return fmt.Sprintf("%s, %s and %d more", n[0], n[1], len(n)-2)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
