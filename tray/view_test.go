//go:build !headless

package tray

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/authkeeper/authkeeper/app/clients"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/assets"
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
		state  engine.State
		expiry time.Duration // from now; 0 means no expiry known
		label  string
		// refresh says whether "Refresh now" is offered (a refresh needs a grant).
		refresh bool
	}{
		{engine.StateFresh, 42*time.Minute + 10*time.Second, "gh — fresh, expires in 42 min", true},
		{engine.StateRefreshing, 20 * time.Second, "gh — refreshing, expires in 20 s", true},
		{engine.StateDeferred, 3 * time.Minute, "gh — refresh deferred (agent busy), expires in 3 min", true},
		{engine.StateDegraded, 2*time.Hour + 5*time.Minute, "gh — refresh failing, retrying, expires in 2 h 5 min", true},
		{engine.StateDegraded, -90 * time.Second, "gh — refresh failing, retrying, expired 1 min ago", true},
		{engine.StateNeedsSignIn, -time.Hour, "gh — needs sign-in", false},
		{engine.StateRevoked, time.Hour, "gh — access revoked, sign in again", false},
		{engine.StateDisabled, 0, "gh — disabled", false},
		{engine.StateFresh, 0, "gh — fresh", true}, // a static token without expiry
	}
	for _, tt := range tests {
		t.Run(tt.label, func(t *testing.T) {
			st := engine.ServerStatus{Name: "gh", State: tt.state}
			if tt.expiry != 0 {
				st.Expiry = now.Add(tt.expiry)
			}
			got := menuModel(engine.Snapshot{Servers: []engine.ServerStatus{st}}, keychain.Prefs{Notifications: true}, now)
			refresh := "  Refresh now"
			if !tt.refresh {
				refresh += " (disabled)"
			}
			want := []string{
				headline(engine.Snapshot{Servers: []engine.ServerStatus{st}}) + " (disabled)",
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

// TestMenuModelWithoutServersStartsWithAddYourFirstServer: with nothing configured the first item is
// the one thing to do, and it opens the Add window; once a server exists it is "Add server…" again,
// further down.
func TestMenuModelWithoutServersStartsWithAddYourFirstServer(t *testing.T) {
	model := menuModel(engine.Snapshot{}, keychain.Prefs{StartAtLogin: true}, now)
	want := []string{"Add your first server…", "--", "[ ] Agent turn busy", "--",
		"Status…", "[ ] Notifications", "[x] Start at login", "--", "Quit"}
	if diff := cmp.Diff(want, labels(model, "")); diff != "" {
		t.Errorf("menu (-want +got):\n%s", diff)
	}
	if model[0].Action != actAdd || model[0].Disabled {
		t.Errorf("first item %+v, want the Add action", model[0])
	}
	one := engine.Snapshot{Servers: []engine.ServerStatus{{Name: "a", State: engine.StateFresh}}}
	got := labels(menuModel(one, keychain.Prefs{}, now), "")
	if got[0] != "1 server, token fresh (disabled)" || !slices.Contains(got, "Add server…") || slices.Contains(got, "Add your first server…") {
		t.Errorf("menu with a server: %q", got)
	}
}

// TestTrayWithoutServersSaysSoInTheIconAndTooltip: the first-run icon is its own, and the tooltip
// says what to do.
func TestTrayWithoutServersSaysSoInTheIconAndTooltip(t *testing.T) {
	if got := iconFor(engine.Snapshot{Leases: []engine.Lease{{ID: "x"}}}); got != iconEmpty {
		t.Errorf("icon without servers = %v, want iconEmpty", got)
	}
	if got, want := tooltip(engine.Snapshot{}, now), "authkeeper: no servers yet. Open this menu and choose “Add your first server…”."; got != want {
		t.Errorf("tooltip %q, want %q", got, want)
	}
	if r := iconResource(iconEmpty); r.Name() != "tray-empty.png" || bytes.Equal(r.Content(), assets.TrayFresh) || len(r.Content()) == 0 {
		t.Errorf("the empty icon is %s (%d bytes), not an icon of its own", r.Name(), len(r.Content()))
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
			var s engine.Snapshot
			for _, id := range tt.leases {
				s.Leases = append(s.Leases, engine.Lease{ID: id})
			}
			got := labels(menuModel(s, keychain.Prefs{}, now), "")
			if got[2] != tt.want {
				t.Errorf("busy item = %q, want %q", got[2], tt.want)
			}
		})
	}
}

func TestIconShowsWhatNeedsTheUserBeforeFailuresBeforeBusy(t *testing.T) {
	srv := func(states ...engine.State) []engine.ServerStatus {
		var out []engine.ServerStatus
		for i, s := range states {
			out = append(out, engine.ServerStatus{Name: string(rune('a' + i)), State: s})
		}
		return out
	}
	busy := []engine.Lease{{ID: "x"}}
	tests := []struct {
		name string
		s    engine.Snapshot
		want iconState
	}{
		{"no servers", engine.Snapshot{}, iconEmpty},
		{"all fresh", engine.Snapshot{Servers: srv(engine.StateFresh, engine.StateRefreshing, engine.StateDisabled)}, iconFresh},
		{"lease held", engine.Snapshot{Servers: srv(engine.StateFresh), Leases: busy}, iconBusy},
		{"deferred", engine.Snapshot{Servers: srv(engine.StateFresh, engine.StateDeferred)}, iconBusy},
		{"degraded", engine.Snapshot{Servers: srv(engine.StateDegraded, engine.StateDeferred), Leases: busy}, iconError},
		{"degraded after deferred", engine.Snapshot{Servers: srv(engine.StateDeferred, engine.StateDegraded)}, iconError},
		{"needs sign-in", engine.Snapshot{Servers: srv(engine.StateDegraded, engine.StateNeedsSignIn), Leases: busy}, iconAttention},
		{"revoked", engine.Snapshot{Servers: srv(engine.StateFresh, engine.StateRevoked)}, iconAttention},
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
	s := engine.Snapshot{Servers: []engine.ServerStatus{
		{Name: "gh", State: engine.StateFresh, Expiry: now.Add(42 * time.Minute)},
		{Name: "linear", State: engine.StateNeedsSignIn},
		{Name: "jira", State: engine.StateRevoked},
		{Name: "notion", State: engine.StateDegraded, Expiry: now.Add(5 * time.Minute)},
	}}
	want := "authkeeper: linear and jira need you to sign in; refresh failing for notion\n" +
		"gh — fresh, expires in 42 min\nlinear — needs sign-in\njira — access revoked, sign in again\n" +
		"notion — refresh failing, retrying, expires in 5 min"
	if diff := cmp.Diff(want, tooltip(s, now)); diff != "" {
		t.Errorf("tooltip (-want +got):\n%s", diff)
	}
	fresh := engine.Snapshot{Servers: []engine.ServerStatus{{Name: "a", State: engine.StateFresh}, {Name: "b", State: engine.StateFresh}}}
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

// TestClientConfigPutsTheKeyInTheHeaderNotTheURL: the copied config is what `authkeeper clients`
// prints for Claude Code, the key in the X-Authkeeper-Key header and nowhere in the URL.
func TestClientConfigPutsTheKeyInTheHeaderNotTheURL(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef"
	got := clientConfig("gh", "http://127.0.0.1:47615", key)
	want := `{
  "mcpServers": {
    "gh": {
      "type": "http",
      "url": "http://127.0.0.1:47615/mcp/gh",
      "headers": {
        "X-Authkeeper-Key": "0123456789abcdef0123456789abcdef"
      }
    }
  }
}
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	checkKeyInHeader(t, got, "gh", "http://127.0.0.1:47615/mcp/gh", key)

	target, _ := clients.TargetByID("claude-code")
	cli, err := target.Snippet(clients.Setup{ProxyURL: "http://127.0.0.1:47615", Key: key}, []string{"gh"})
	if err != nil || cli != got {
		t.Errorf("tray and `authkeeper clients` disagree: tray\n%s\nclients (err %v)\n%s", got, err, cli)
	}
	if got := clientConfig("gh", "", key); got != "" {
		t.Errorf("config without a proxy URL = %q, want none", got)
	}
}

// checkKeyInHeader checks that config is {"mcpServers": {name: ...}} with url wantURL, which holds no
// key, and the key in the proxy's key header.
func checkKeyInHeader(t *testing.T, config, name, wantURL, key string) {
	t.Helper()
	var cfg struct {
		MCPServers map[string]struct {
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		} `json:"mcpServers"`
	}
	if err := json.Unmarshal([]byte(config), &cfg); err != nil {
		t.Fatalf("config is not JSON: %v\n%s", err, config)
	}
	e, ok := cfg.MCPServers[name]
	if !ok {
		t.Fatalf("config has no mcpServers entry %q:\n%s", name, config)
	}
	if e.URL != wantURL || strings.Contains(e.URL, key) {
		t.Errorf("url = %q, want %q (without the key)", e.URL, wantURL)
	}
	if got := e.Headers[proxy.ProxyKeyHeader]; got != key {
		t.Errorf("header %s = %q, want the proxy key %q", proxy.ProxyKeyHeader, got, key)
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
			s := engine.Snapshot{Servers: []engine.ServerStatus{{Name: "x", State: engine.StateFresh, Auth: tt.auth}}}
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
