package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/oauth"
)

// TestEntraStyleServerSignsInWithTheUsersScopesAndShowsItsQuirks: against the bench AS in its Entra
// profile (pre-registered public client, no PKCE advertised, `resource` refused, scope required on
// refresh, a templated issuer), `authkeeper add --client-id … --scope api://…/.default --scope
// offline_access --assume-pkce` signs in, three refreshes work, and status lists what was tolerated,
// each as a warning; the sign-in's audit line names the quirks and no token.
func TestEntraStyleServerSignsInWithTheUsersScopesAndShowsItsQuirks(t *testing.T) {
	b := newBench(t, benchOptions{Home: true})
	entra := testbed.NewAuthServer(t, testbed.AuthServerOptions{Profile: testbed.ProfileEntra, AccessTokenTTL: time.Hour})
	srv := testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: entra.Issuer, AdvertiseAS: entra.AdvertisedIssuer})
	entra.SetResource(t, srv.URL)
	code, out, errOut := runCLIWith(t, "", nil, "add", srv.URL, "--name", "entra", "--client-id", entra.Clients[0].ID,
		"--scope", entra.AppScope, "--scope", "offline_access", "--assume-pkce")
	if code != 0 {
		t.Fatalf("add: exit %d\n%s%s", code, out, errOut)
	}
	ctx := context.Background()
	for i := range 3 {
		if err := b.eng.Refresh(ctx, "entra", "test"); err != nil {
			t.Fatalf("refresh %d: %v", i+1, err)
		}
	}
	st := serverStatus(t, b.eng, "entra")
	if st.State != engine.StateFresh {
		t.Errorf("state %s after three refreshes: %s", st.State, st.Message)
	}
	for _, q := range []oauth.Quirk{oauth.QuirkPKCEAssumed, oauth.QuirkResourceOmitted, oauth.QuirkScopeOnRefresh} {
		if !hasQuirk(st.Quirks, q) {
			t.Errorf("status quirks %v lack %s", st.Quirks, q)
		}
	}
	if len(st.Warnings) != len(st.Quirks) {
		t.Errorf("%d warnings for %d quirks", len(st.Warnings), len(st.Quirks))
	}
	_, out, _ = runCLIWith(t, "", nil, "status")
	if strings.Count(out, "warning: ") < 3 {
		t.Errorf("`authkeeper status` shows fewer than three warnings:\n%s", out)
	}
	tok, _ := b.eng.Token(ctx, "entra")
	if n := auditKinds(t, b.paths, engine.EventAdded, "entra"); n != 1 {
		t.Errorf("%d added events", n)
	}
	found := false
	for _, ev := range auditEvents(t, b.paths) {
		if ev.Kind == engine.EventAdded && ev.Server == "entra" && hasQuirk(ev.Quirks, oauth.QuirkPKCEAssumed) {
			found = true
		}
	}
	if !found {
		t.Error("the audit log's added event does not name the quirks")
	}
	audit, err := os.ReadFile(filepath.Join(b.paths.StateDir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, "status output and the audit log", out+string(audit), tok)
}
