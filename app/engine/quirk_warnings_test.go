package engine

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/authkeeper/authkeeper/oauth"
	"github.com/google/go-cmp/cmp"
)

// The spec deviations a sign-in tolerated are named to the user (status warnings) and in the sign-
// in event, never with token values.

func TestWarningsNameEachToleratedQuirk(t *testing.T) {
	g := oauth.Grant{Issuer: "https://auth.atlassian.com", AdvertisedIssuer: "https://mcp.atlassian.com",
		Scopes: []string{"api://app/.default", "offline_access"},
		Quirks: []oauth.Quirk{oauth.QuirkIssuerMismatch, oauth.QuirkPKCEAssumed, oauth.QuirkResourceOmitted,
			oauth.QuirkScopeOnRefresh, oauth.QuirkNoExpiry}}
	want := []Warning{
		{oauth.QuirkIssuerMismatch, "The server names https://mcp.atlassian.com as its authorization server, but the one that answers there is https://auth.atlassian.com; the grant is bound to https://auth.atlassian.com."},
		{oauth.QuirkPKCEAssumed, oauth.QuirkPKCEAssumed.Describe()},
		{oauth.QuirkResourceOmitted, oauth.QuirkResourceOmitted.Describe()},
		{oauth.QuirkScopeOnRefresh, "The authorization server needs the scopes on every refresh; authkeeper sends api://app/.default offline_access."},
		{oauth.QuirkNoExpiry, oauth.QuirkNoExpiry.Describe()},
	}
	if diff := cmp.Diff(want, WarningsOf(g)); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if got := quirkSummary(g); got != "tolerated: issuer-mismatch, pkce-assumed, resource-omitted, scope-on-refresh, no-expiry" {
		t.Errorf("summary %q", got)
	}
	if WarningsOf(oauth.Grant{}) != nil || quirkSummary(oauth.Grant{}) != "" {
		t.Error("a grant without quirks has warnings")
	}
}

func TestSignInEventRecordsTheQuirksWithoutTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		g := r.k.Grant()
		g.Quirks = []oauth.Quirk{oauth.QuirkPKCEAssumed, oauth.QuirkResourceOmitted}
		if err := r.k.Adopt(oauth.Token{AccessToken: "at-secret", RefreshToken: "rt-secret", Expiry: time.Now().Add(time.Hour)}, g); err != nil {
			t.Fatal(err)
		}
		var ev Event
		for _, e := range r.ev.l {
			if e.Kind == EventSignedIn {
				ev = e
			}
		}
		if diff := cmp.Diff(g.Quirks, ev.Quirks); diff != "" {
			t.Errorf("signed_in event quirks (-want +got):\n%s", diff)
		}
		if ev.Message != "tolerated: pkce-assumed, resource-omitted" {
			t.Errorf("signed_in message %q", ev.Message)
		}
	})
}
