package proxy

import (
	"context"
	"errors"
	"net/http"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/oauth"
)

// Engine is all the proxy needs of the engine: a configured server by name, and the access key callers
// present. Of adapts *engine.Engine to it.
type Engine interface {
	// Upstream returns server name, or an error wrapping engine.ErrUnknownServer.
	Upstream(name string) (Upstream, error)
	// ProxyKey is the per-install access key every caller must present.
	ProxyKey() string
}

// Upstream is one configured server as the proxy sees it: where requests go, the token they carry, and
// what to tell its keeper about the server's answers. Implementations are safe for concurrent use.
type Upstream interface {
	// URL is the server's configured URL; Resource the origin its tokens were issued for ("" unbound);
	// NoAuth reports a server saved as needing no credentials.
	URL() string
	Resource() string
	NoAuth() bool
	// Busy marks the server busy for one call (scheduled refreshes wait) until release is called.
	Busy() (release func())
	// Refused reports that the server refused the current grant and only a sign-in helps.
	Refused() bool
	// Token returns a valid access token, refreshing first if needed ("" for a server without auth).
	Token(ctx context.Context) (string, error)
	// Rejected reports that the server refused token: one single-flight forced refresh.
	Rejected(ctx context.Context, token string) error
	// RefusedAfterRefresh reports that the server refused even the token just refreshed.
	RefusedAfterRefresh(token string)
	// AuthRequired reports that a server saved as needing no auth answered 401 with these challenges;
	// true when that turned it into a server that needs a sign-in.
	AuthRequired(challenges []string) bool
	// StepUp handles a 403 asking for more scope and reports whether the caller gets an auth_failure;
	// false: the server's answer goes back unchanged.
	StepUp(status int, h http.Header) bool
	// Status is the server's state, for the auth_failure a caller gets.
	Status() engine.ServerStatus
	// Scopes are the scopes the next sign-in asks for (after a step-up: the wider set).
	Scopes() []string
}

// Of adapts the engine to the proxy's Engine.
func Of(e *engine.Engine) Engine { return engineAdapter{e} }

type engineAdapter struct{ e *engine.Engine }

func (a engineAdapter) ProxyKey() string { return a.e.ProxyKey() }

func (a engineAdapter) Upstream(name string) (Upstream, error) {
	k, err := a.e.Keeper(name)
	if err != nil {
		return nil, err
	}
	srv, err := a.e.Server(name)
	if err != nil {
		return nil, err
	}
	return upstream{Keeper: k, e: a.e, url: srv.URL}, nil
}

// upstream is a keeper with its server's URL and the engine's busy set and step-up rules.
type upstream struct {
	*engine.Keeper
	e   *engine.Engine
	url string
}

func (u upstream) URL() string      { return u.url }
func (u upstream) Resource() string { return u.Grant().Resource }
func (u upstream) Scopes() []string { return u.Grant().Scopes }
func (u upstream) Busy() func()     { return u.e.Busy().Acquire(u.Status().Name) }

// StepUp (MCP authorization, "Scope challenge handling"): the keeper is told to sign in with the union
// of scopes. An upgrade the AS refused before (the union adds nothing to what was granted or already
// requested) is not asked for again: the server's 403 goes back unchanged, unless a step-up already
// waits for the user.
func (u upstream) StepUp(status int, h http.Header) bool {
	tok, g := u.Credentials()
	granted := append(append([]string(nil), tok.Scopes...), g.Scopes...)
	scopes, err := u.e.StepUpScopes(status, h, granted)
	switch {
	case errors.Is(err, oauth.ErrNotStepUp):
		return false
	case err != nil:
		return u.Status().State == engine.StateNeedsSignIn
	}
	u.Keeper.StepUp(scopes)
	return true
}

var _ Upstream = upstream{}
