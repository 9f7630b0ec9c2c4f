package proxy

import (
	"context"
	"net/http"

	"github.com/authkeeper/authkeeper/app/engine"
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
	// RejectedWeakly reports that the server's answer said authentication failed (weak evidence): one
	// single-flight forced refresh, from whose failure nothing is concluded about the server.
	RejectedWeakly(ctx context.Context, token string) error
	// Renewable reports whether a forced refresh can renew the token (false for a static token, or one
	// without a refresh token, which Rejected ends instead).
	Renewable() bool
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

// engineAdapter turns *engine.Upstream into the interface (Go's method sets are not covariant).
type engineAdapter struct{ e *engine.Engine }

func (a engineAdapter) ProxyKey() string { return a.e.ProxyKey() }

func (a engineAdapter) Upstream(name string) (Upstream, error) {
	u, err := a.e.Upstream(name)
	if err != nil {
		return nil, err
	}
	return u, nil
}

var _ Upstream = (*engine.Upstream)(nil)
