package oauth

import (
	"errors"
	"testing"
)

// TestCodeReplayIsRefusedAndRevokesTheGrant redeems one authorization code twice, below SignIn: the AS
// refuses the replay (invalid_grant, re-auth) and, per RFC 6749 §4.1.2, revokes what the code issued.
func TestCodeReplayIsRefusedAndRevokesTheGrant(t *testing.T) {
	b := newBench(t, benchOptions{})
	p := b.probe(t)
	g, err := b.client.clientFor(t.Context(), p, SignInOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lb, err := listenLoopback(0)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.close(nil, false)
	verifier, state := randomString(32), randomString(16)
	u, err := authorizationURL(g, lb.redirectURI(), verifier, state)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.browser.Open(u); err != nil {
		t.Fatal(err)
	}
	cb := <-lb.got
	cb.reply <- nil
	redeem := func() (Token, error) {
		res, err := b.client.completeAuthorization(t.Context(), p.AuthServer, g, cb.query, state, verifier, lb.redirectURI())
		return res.tok, err
	}
	tok, err := redeem()
	if err != nil {
		t.Fatalf("first redemption: %v", err)
	}
	if _, err := redeem(); !errors.Is(err, ErrReauthRequired) {
		t.Fatalf("replayed code = %v, want invalid_grant (re-auth)", err)
	}
	if _, _, err := b.client.Refresh(t.Context(), g, tok.RefreshToken); !errors.Is(err, ErrReauthRequired) {
		t.Errorf("refresh after a code replay = %v, want the grant revoked", err)
	}
}
