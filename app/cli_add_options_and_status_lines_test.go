package app

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/oauth"
	"github.com/google/go-cmp/cmp"
)

func TestAddRefusesOptionCombinationsThatCannotWork(t *testing.T) {
	for _, tt := range []struct {
		name string
		body control.AddBody
		want string // in the error; "" for none
	}{
		{"browser sign-in", control.AddBody{URL: "https://x"}, ""},
		{"client credentials with a secret", control.AddBody{ClientID: "svc", Secret: "s", ClientCredentials: true}, ""},
		{"client credentials with a key", control.AddBody{ClientID: "svc", Key: "-----BEGIN PRIVATE KEY-----", ClientCredentials: true}, ""},
		{"static token", control.AddBody{Token: "k"}, ""},
		{"client credentials without a client id", control.AddBody{Secret: "s", ClientCredentials: true}, "--client-id"},
		{"client credentials without a secret or key", control.AddBody{ClientID: "svc", ClientCredentials: true}, "AUTHKEEPER_CLIENT_SECRET"},
		{"device and client credentials", control.AddBody{ClientID: "svc", Secret: "s", ClientCredentials: true, Device: true}, "choose one"},
		{"device and a static token", control.AddBody{Token: "k", Device: true}, "choose one"},
		{"a key without a client id", control.AddBody{Key: "-----BEGIN PRIVATE KEY-----"}, "go with --client-id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkAdd(tt.body)
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("checkAdd = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestAddFlagsCollectScopesAndParams(t *testing.T) {
	fs := flag.NewFlagSet("add", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var scopes listFlag
	params := paramFlag{}
	fs.Var(&scopes, "scope", "")
	fs.Var(params, "param", "")
	err := fs.Parse([]string{"--scope", "api://app/.default offline_access", "--scope", "mcp:read",
		"--param", "audience=https://api.example", "--param", "prompt=consent=yes"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(listFlag{"api://app/.default", "offline_access", "mcp:read"}, scopes); diff != "" {
		t.Errorf("scopes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(paramFlag{"audience": "https://api.example", "prompt": "consent=yes"}, params); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	for _, bad := range [][]string{{"--param", "noequals"}, {"--param", "=v"}, {"--param", "prompt=again"}} {
		if err := fs.Parse(bad); err == nil {
			t.Errorf("--param %v accepted", bad[1:])
		}
	}
}

func TestTokenExpiryIsADateOrAnRFC3339Time(t *testing.T) {
	got, err := parseExpiry("2026-12-31")
	if want := time.Date(2026, 12, 31, 0, 0, 0, 0, time.Local); err != nil || !got.Equal(want) {
		t.Errorf("date: %v, %v; want %v", got, err, want)
	}
	got, err = parseExpiry("2026-12-31T18:00:00Z")
	if want := time.Date(2026, 12, 31, 18, 0, 0, 0, time.UTC); err != nil || !got.Equal(want) {
		t.Errorf("time: %v, %v; want %v", got, err, want)
	}
	if _, err := parseExpiry("next year"); err == nil {
		t.Error("accepted a free-form expiry")
	}
}

func TestStaticTokenComesFromStdinOrTheEnvironmentAndIsNeverQuoted(t *testing.T) {
	const secret = "sk-live-0123456789"
	getenv := func(k string) string {
		if k == envToken {
			return "from-env"
		}
		return ""
	}
	for _, tt := range []struct {
		name, stdin, want, err string
		fromStdin              bool
	}{
		{"stdin, trimmed", secret + "\n", secret, "", true},
		{"environment", "", "from-env", "", false},
		{"empty stdin", "\n", "", "no token", true},
		{"two lines", secret + "\nmore\n", "", "one line", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := staticToken(env{stdin: strings.NewReader(tt.stdin), getenv: getenv}, tt.fromStdin)
			if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("staticToken = %q, %v; want %q, %q", got, err, tt.want, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Error("the error quotes the token")
			}
		})
	}
}

func TestUsageListsTheNewFlagsAndVariables(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"authkeeper", "help"}, env{stdout: &out, stderr: &out, getenv: os.Getenv}); code != 0 {
		t.Fatalf("help exited %d", code)
	}
	for _, want := range []string{"--scope", "--param", "--assume-pkce", "--client-credentials", "--client-key-file",
		"--token-stdin", "--token-expires", "--client-metadata-url", "AUTHKEEPER_CLIENT_SECRET", "AUTHKEEPER_TOKEN",
		"--cross-app", "--idp-token-endpoint", "--idp-client-id", "--id-token-stdin", "AUTHKEEPER_IDP_ID_TOKEN", "AUTHKEEPER_IDP_CLIENT_SECRET"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage does not mention %s", want)
		}
	}
}

func TestStatusLinesSayNoExpiryAndListWarnings(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	g := oauth.Grant{Issuer: "https://as.example", AdvertisedIssuer: "https://mcp.example",
		Quirks: []oauth.Quirk{oauth.QuirkIssuerMismatch, oauth.QuirkNoExpiry}}
	servers := []engine.ServerStatus{
		{Name: "github", State: engine.StateFresh, NoExpiry: true, Warnings: engine.WarningsOf(g)},
		{Name: "linear", State: engine.StateFresh, Expiry: now.Add(42 * time.Minute)},
		{Name: "gone", State: engine.StateNeedsSignIn, Message: "signed out"},
	}
	var out bytes.Buffer
	printServers(&out, servers, now)
	want := "  github               fresh          no expiry\n" +
		"                       warning: " + engine.WarningsOf(g)[0].Message + "\n" +
		"                       warning: " + oauth.QuirkNoExpiry.Describe() + "\n" +
		"  linear               fresh          expires in 42m0s\n" +
		"  gone                 needs-sign-in  no token — signed out\n"
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

// TestStatusSaysWhoRefreshesAFleetGrant: in a fleet, each server's status has a line naming the
// instance that refreshes it (or this one, or none during an election), the last write and its writer,
// and the instances serving it; the fleet's own line names this instance and the live ones.
func TestStatusSaysWhoRefreshesAFleetGrant(t *testing.T) {
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   engine.FleetServer
		want string
	}{
		{"another instance", engine.FleetServer{Owner: "box1", Serving: []string{"box1", "box2"}, LastWriter: "box1", LastWrite: now.Add(-12 * time.Second)},
			"refreshed by box1; last written 12s ago by box1; served by box1, box2"},
		{"this instance", engine.FleetServer{Owner: "box2", Leading: true}, "refreshed by this instance"},
		{"none elected", engine.FleetServer{}, "refreshed by no instance (an election is under way, or the store has no quorum)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fleetLine(tt.in, now); got != tt.want {
				t.Errorf("fleetLine = %q, want %q", got, tt.want)
			}
		})
	}
	var b strings.Builder
	printFleet(&b, &engine.FleetView{Instance: "box2", Members: []engine.FleetMember{{ID: "box1"}, {ID: "box2"}}})
	if want := "fleet: this is box2; 2 instance(s) live: box1, box2\n"; b.String() != want {
		t.Errorf("printFleet = %q, want %q", b.String(), want)
	}
	b.Reset()
	printFleet(&b, nil)
	if b.Len() != 0 {
		t.Errorf("printFleet without a fleet printed %q", b.String())
	}
}
