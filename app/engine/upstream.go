package engine

import (
	"context"
	"errors"
	"net/http"

	"github.com/authkeeper/authkeeper/oauth"
)

// Upstream is one configured server as a front end that forwards requests to it (the proxy) sees it:
// where requests go, the token they carry, and what to tell the server's keeper about its answers. It
// exposes none of the keeper's lifecycle and no refresh token. Safe for concurrent use.
type Upstream struct {
	e   *Engine
	k   *Keeper
	url string
}

// Upstream returns server name, or an error wrapping ErrUnknownServer.
func (e *Engine) Upstream(name string) (*Upstream, error) {
	k, err := e.keeper(name)
	if err != nil {
		return nil, err
	}
	srv, err := e.Server(name)
	if err != nil {
		return nil, err
	}
	return &Upstream{e: e, k: k, url: srv.URL}, nil
}

// URL is the server's configured URL.
func (u *Upstream) URL() string { return u.url }

// Resource is the origin the server's tokens were issued for ("" when unbound).
func (u *Upstream) Resource() string { return u.k.Grant().Resource }

// Scopes are the scopes the next sign-in asks for (after a step-up: the wider set).
func (u *Upstream) Scopes() []string { return u.k.Grant().Scopes }

// NoAuth reports a server saved as needing no credentials.
func (u *Upstream) NoAuth() bool { return u.k.NoAuth() }

// Busy marks the server busy for one call (scheduled refreshes wait) until release is called.
func (u *Upstream) Busy() (release func()) { return u.e.busy.Acquire(u.k.cfg.Name) }

// Refused reports that the server refused the current grant and only a sign-in helps.
func (u *Upstream) Refused() bool { return u.k.Refused() }

// Token returns a valid access token, refreshing first if needed ("" for a server without auth).
func (u *Upstream) Token(ctx context.Context) (string, error) { return u.k.Token(ctx) }

// Rejected reports that the server refused token; see Keeper.Rejected.
func (u *Upstream) Rejected(ctx context.Context, token string) error { return u.k.Rejected(ctx, token) }

// RejectedWeakly reports that the server's answer said authentication failed; see
// Keeper.RejectedWeakly.
func (u *Upstream) RejectedWeakly(ctx context.Context, token string) error {
	return u.k.RejectedWeakly(ctx, token)
}

// Renewable reports whether a forced refresh can renew the token; see Keeper.Renewable.
func (u *Upstream) Renewable() bool { return u.k.Renewable() }

// RefusedAfterRefresh reports that the server refused even the token just refreshed.
func (u *Upstream) RefusedAfterRefresh(token string) { u.k.RefusedAfterRefresh(token) }

// AuthRequired reports that a server saved as needing no auth answered 401 with these challenges;
// see Keeper.AuthRequired.
func (u *Upstream) AuthRequired(challenges []string) bool { return u.k.AuthRequired(challenges) }

// Status is the server's state.
func (u *Upstream) Status() ServerStatus { return u.k.Status() }

// StepUp handles the server's answer to a call when it is a 403 asking for more scope (MCP
// authorization, "Scope challenge handling"): the keeper is told to sign in with the union of scopes,
// and true means the caller gets an auth_failure. An upgrade the AS refused before (the union adds
// nothing to what was granted or already requested) is not asked for again: false, and the server's
// 403 goes back unchanged — unless a step-up already waits for the user.
func (u *Upstream) StepUp(status int, h http.Header) bool {
	tok, g := u.k.Credentials()
	granted := append(append([]string(nil), tok.Scopes...), g.Scopes...)
	scopes, err := u.e.oauth.StepUpScopes(status, h, granted)
	switch {
	case errors.Is(err, oauth.ErrNotStepUp):
		return false
	case err != nil:
		return u.k.Status().State == StateNeedsSignIn
	}
	u.k.StepUp(scopes)
	return true
}
