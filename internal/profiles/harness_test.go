// Package profiles proves, through the real authkeeper binary, that it signs in, refreshes and signs
// out against the authorization servers real MCP servers use: one test per provider profile of the
// bench (Entra ID, Atlassian, Slack, GitHub, Auth0, a 2025-03-26 server, CIMD on oidc-provider) and
// Cloudflare's workers-oauth-provider under workerd. docs/providers.md is the user's side of it.
package profiles

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/e2e"
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// row is one provider: how the user adds it and what authkeeper must then show and do.
type row struct {
	name string
	url  string
	// args are added to `authkeeper add URL --name NAME`; env to its environment (a client secret).
	args []string
	env  []string
	// quirks are the deviations from the MCP spec the server's status must name.
	quirks []oauth.Quirk
	// refreshes: the grant has a refresh token (GitHub's has none).
	refreshes bool
	// revocation: the AS has an RFC 7009 endpoint, so signing out must kill the refresh token there.
	revocation bool
}

// exercise adds the server, calls it through the proxy, refreshes three times (each new token must
// serve the same MCP session), signs out (revoking at the AS where it can), checks the agent then gets
// the structured sign-in error, signs in again, and finally searches every output and file of the
// installation for every token seen.
func exercise(t *testing.T, in *e2e.Install, r row) {
	t.Helper()
	res := in.MustCLI(r.env, append([]string{"add", r.url, "--name", r.name}, r.args...)...)
	if !strings.Contains(res.Stdout, "Added "+r.name) && !strings.Contains(res.Stdout, r.name) {
		t.Logf("add printed: %s", res.Stdout)
	}
	seen := &tokens{}
	seen.sample(r.name)
	st := status(t, in, r.name)
	if st.State != engine.StateFresh {
		t.Fatalf("%s after add: state %s (%s)", r.name, st.State, st.Message)
	}
	agent := in.Connect(t, r.name)
	agent.MustEcho(t, "first call")

	if r.refreshes {
		prev := in.HeadersToken(t, r.name)
		for i := 1; i <= 3; i++ {
			in.MustCLI(nil, "refresh", r.name)
			tok := in.HeadersToken(t, r.name)
			if tok == prev {
				t.Fatalf("refresh %d: the access token did not change", i)
			}
			prev = tok
			seen.sample(r.name)
			agent.MustEcho(t, "after refresh "+string(rune('0'+i)))
		}
		if n := in.CountEvents(engine.EventRefreshed, r.name); n < 3 {
			t.Errorf("%d refreshed events in the audit log, want at least 3", n)
		}
	} else {
		st = status(t, in, r.name)
		if !st.Expiry.IsZero() || !st.Next.IsZero() {
			t.Errorf("a token without expiry: status expiry %v, next refresh %v; want none", st.Expiry, st.Next)
		}
	}

	// Some quirks are learned on the way (Entra's scope on refresh, at the first refresh refused
	// without it), so they are checked once the grant has been refreshed.
	st = status(t, in, r.name)
	for _, q := range r.quirks {
		if !slices.Contains(st.Quirks, q) {
			t.Errorf("%s: status quirks %v lack %q", r.name, st.Quirks, q)
		}
	}
	before := record(t, r.name)
	in.MustCLI(nil, "logout", r.name)
	if r.revocation && before.RefreshToken != "" {
		if code := refreshWith(t, before); code != "invalid_grant" {
			t.Errorf("the refresh token still works at the AS after logout: %q", code)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := agent.Echo(ctx, "signed out")
	var f *e2e.AuthFailure
	if !asFailure(err, &f) || f.Subtype != "sign_in_required" || f.Retryable {
		t.Errorf("a call after logout: %v, want a non-retryable sign_in_required", err)
	}

	in.MustCLI(r.env, "login", r.name)
	seen.sample(r.name)
	agent.MustEcho(t, "signed in again")
	if leaks := seen.leaks(in.LeakText()); leaks > 0 {
		t.Errorf("%d of %d tokens appear in authkeeper's output or files", leaks, seen.len())
	}
}

// status is server name's line in the running engine's snapshot.
func status(t *testing.T, in *e2e.Install, name string) engine.ServerStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := in.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range s.Servers {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("no server %q in the status", name)
	return engine.ServerStatus{}
}

// record reads server name's record from the installation's keyring.
func record(t *testing.T, name string) keychain.Record {
	t.Helper()
	ks, err := keychain.NewKeyringStore(keychain.KeyringConfig{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ks.Get(name)
	if err != nil {
		t.Fatalf("keyring record of %s: %v", name, err)
	}
	return rec
}

// refreshWith redeems rec's refresh token at its token endpoint as its client would, and returns the
// OAuth error code of the answer ("" on success). A public client is assumed: the revocation checks
// run against dynamically registered clients.
func refreshWith(t *testing.T, rec keychain.Record) string {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rec.RefreshToken}, "client_id": {rec.Binding.ClientID}}
	if rec.Binding.Resource != "" && !rec.Binding.OmitResource {
		form.Set("resource", rec.Binding.Resource)
	}
	resp, err := http.PostForm(rec.Binding.TokenEndpoint, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
	}
	_ = decodeJSON(resp.Body, &body)
	if resp.StatusCode == http.StatusOK && body.Error == "" {
		return ""
	}
	return body.Error
}
