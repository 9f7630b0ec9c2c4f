package tray

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authkeeper/authkeeper/app"
	"github.com/authkeeper/authkeeper/keychain"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// labels flattens a menu model to its labels, submenus indented, separators as "--".
func labels(items []item, indent string) []string {
	var out []string
	for _, it := range items {
		l := it.Label
		switch {
		case it.Separator:
			l = "--"
		case it.Check && it.Checked:
			l = "[x] " + l
		case it.Check:
			l = "[ ] " + l
		}
		if it.Disabled {
			l += " (disabled)"
		}
		out = append(out, indent+l)
		out = append(out, labels(it.Children, indent+"  ")...)
	}
	return out
}

func TestMenuModelShowsEachServerStateLifetimeAndActions(t *testing.T) {
	tests := []struct {
		state  app.State
		expiry time.Duration // from now; 0 means no expiry known
		label  string
		// refresh says whether "Refresh now" is offered (a refresh needs a grant).
		refresh bool
	}{
		{app.StateFresh, 42*time.Minute + 10*time.Second, "gh — fresh, expires in 42 min", true},
		{app.StateRefreshing, 20 * time.Second, "gh — refreshing, expires in 20 s", true},
		{app.StateDeferred, 3 * time.Minute, "gh — refresh deferred (agent busy), expires in 3 min", true},
		{app.StateDegraded, 2*time.Hour + 5*time.Minute, "gh — refresh failing, retrying, expires in 2 h 5 min", true},
		{app.StateDegraded, -90 * time.Second, "gh — refresh failing, retrying, expired 1 min ago", true},
		{app.StateNeedsSignIn, -time.Hour, "gh — needs sign-in", false},
		{app.StateRevoked, time.Hour, "gh — access revoked, sign in again", false},
		{app.StateDisabled, 0, "gh — disabled", false},
		{app.StateFresh, 0, "gh — fresh", true}, // a static token without expiry
	}
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			st := app.ServerStatus{Name: "gh", State: tt.state}
			if tt.expiry != 0 {
				st.Expiry = now.Add(tt.expiry)
			}
			got := menuModel(app.Snapshot{Servers: []app.ServerStatus{st}}, keychain.Prefs{Notifications: true}, now)
			refresh := "  Refresh now"
			if !tt.refresh {
				refresh += " (disabled)"
			}
			want := []string{
				headline(app.Snapshot{Servers: []app.ServerStatus{st}}) + " (disabled)",
				"--",
				tt.label,
				refresh, "  Sign in again", "  Copy proxy URL", "  Copy client config", "  Remove…",
				"--", "[ ] Agent turn busy", "--", "Add server…", "Status…", "[x] Notifications",
				"[ ] Start at login", "--", "Quit",
			}
			if diff := cmp.Diff(want, labels(got, "")); diff != "" {
				t.Errorf("menu (-want +got):\n%s", diff)
			}
			for _, sub := range got[2].Children {
				if sub.Server != "gh" {
					t.Errorf("%q acts on server %q, want gh", sub.Label, sub.Server)
				}
			}
		})
	}
}

func TestMenuModelWithoutServersOffersAdd(t *testing.T) {
	got := labels(menuModel(app.Snapshot{}, keychain.Prefs{StartAtLogin: true}, now), "")
	want := []string{"No servers yet (disabled)", "--", "[ ] Agent turn busy", "--",
		"Add server…", "Status…", "[ ] Notifications", "[x] Start at login", "--", "Quit"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("menu (-want +got):\n%s", diff)
	}
}

func TestBusyItemIsCheckedByAnyLeaseAndCountsAgentLeases(t *testing.T) {
	tests := []struct {
		leases []string
		want   string
	}{
		{nil, "[ ] Agent turn busy"},
		{[]string{trayBusyLease}, "[x] Agent turn busy"},
		{[]string{"claude-1"}, "[x] Agent turn busy (1 lease held)"},
		{[]string{trayBusyLease, "claude-1", "ci"}, "[x] Agent turn busy (3 leases held)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			var s app.Snapshot
			for _, id := range tt.leases {
				s.Leases = append(s.Leases, app.Lease{ID: id})
			}
			got := labels(menuModel(s, keychain.Prefs{}, now), "")
			if got[2] != tt.want {
				t.Errorf("busy item = %q, want %q", got[2], tt.want)
			}
		})
	}
}

func TestIconShowsWhatNeedsTheUserBeforeFailuresBeforeBusy(t *testing.T) {
	srv := func(states ...app.State) []app.ServerStatus {
		var out []app.ServerStatus
		for i, s := range states {
			out = append(out, app.ServerStatus{Name: string(rune('a' + i)), State: s})
		}
		return out
	}
	busy := []app.Lease{{ID: "x"}}
	tests := []struct {
		name string
		s    app.Snapshot
		want iconState
	}{
		{"no servers", app.Snapshot{}, iconFresh},
		{"all fresh", app.Snapshot{Servers: srv(app.StateFresh, app.StateRefreshing, app.StateDisabled)}, iconFresh},
		{"lease held", app.Snapshot{Servers: srv(app.StateFresh), Leases: busy}, iconBusy},
		{"deferred", app.Snapshot{Servers: srv(app.StateFresh, app.StateDeferred)}, iconBusy},
		{"degraded", app.Snapshot{Servers: srv(app.StateDegraded, app.StateDeferred), Leases: busy}, iconError},
		{"degraded after deferred", app.Snapshot{Servers: srv(app.StateDeferred, app.StateDegraded)}, iconError},
		{"needs sign-in", app.Snapshot{Servers: srv(app.StateDegraded, app.StateNeedsSignIn), Leases: busy}, iconAttention},
		{"revoked", app.Snapshot{Servers: srv(app.StateFresh, app.StateRevoked)}, iconAttention},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := iconFor(tt.s); got != tt.want {
				t.Errorf("iconFor = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTooltipSummarisesThenListsServers(t *testing.T) {
	s := app.Snapshot{Servers: []app.ServerStatus{
		{Name: "gh", State: app.StateFresh, Expiry: now.Add(42 * time.Minute)},
		{Name: "linear", State: app.StateNeedsSignIn},
		{Name: "jira", State: app.StateRevoked},
		{Name: "notion", State: app.StateDegraded, Expiry: now.Add(5 * time.Minute)},
	}}
	want := "authkeeper: linear and jira need you to sign in; refresh failing for notion\n" +
		"gh — fresh, expires in 42 min\nlinear — needs sign-in\njira — access revoked, sign in again\n" +
		"notion — refresh failing, retrying, expires in 5 min"
	if diff := cmp.Diff(want, tooltip(s, now)); diff != "" {
		t.Errorf("tooltip (-want +got):\n%s", diff)
	}
	fresh := app.Snapshot{Servers: []app.ServerStatus{{Name: "a", State: app.StateFresh}, {Name: "b", State: app.StateFresh}}}
	if got := headline(fresh); got != "All 2 servers fresh" {
		t.Errorf("headline = %q", got)
	}
}

func TestNamesListsThreeThenCountsTheRest(t *testing.T) {
	for n, want := range map[int]string{
		1: "a", 2: "a and b", 3: "a, b and c", 4: "a, b and 2 more", 7: "a, b and 5 more",
	} {
		if got := names(strings.Split("abcdefg", "")[:n]); got != want {
			t.Errorf("names(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestClientConfigPointsAtTheProxyEndpoint(t *testing.T) {
	got := clientConfig("gh", "http://127.0.0.1:47615/KEY/mcp/gh")
	want := `{
  "mcpServers": {
    "gh": {
      "type": "http",
      "url": "http://127.0.0.1:47615/KEY/mcp/gh"
    }
  }
}`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestMenuModelOffersRefreshAndSignInOnlyForOAuthServers(t *testing.T) {
	tests := []struct {
		auth string
		want []string
	}{
		{"oauth", []string{"  Refresh now", "  Sign in again", "  Copy proxy URL", "  Copy client config", "  Remove…"}},
		{"static-token", []string{"  Copy proxy URL", "  Copy client config", "  Remove…"}},
		{"no-auth", []string{"  Copy proxy URL", "  Copy client config", "  Remove…"}},
	}
	for _, tt := range tests {
		t.Run(tt.auth, func(t *testing.T) {
			s := app.Snapshot{Servers: []app.ServerStatus{{Name: "x", State: app.StateFresh, Auth: tt.auth}}}
			var server item
			for _, it := range menuModel(s, keychain.Prefs{}, now) {
				if strings.HasPrefix(it.Label, "x — ") {
					server = it
				}
			}
			if diff := cmp.Diff(tt.want, labels(server.Children, "  ")); diff != "" {
				t.Errorf("submenu (-want +got):\n%s", diff)
			}
		})
	}
}
