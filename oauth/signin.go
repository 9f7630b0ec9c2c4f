package oauth

import (
	"context"
	"errors"
	"fmt"
)

// Sign-in failures that are not an AS's answer.
var (
	// ErrSignInTimeout: the browser did not come back within Config.SignInTimeout.
	ErrSignInTimeout = errors.New("oauth: sign-in timed out waiting for the browser")
	// ErrStateMismatch: the callback's state is not ours (RFC 6749 §10.12): a forged or stale response.
	ErrStateMismatch = errors.New("oauth: authorization response state mismatch")
)

// SignInOptions tunes one sign-in. The zero value registers automatically and requests the probe's scopes.
type SignInOptions struct {
	// Client is a client id the user registered by hand; it takes precedence over every other route.
	Client *StaticClient
	// Previous is the server's current grant; its registration is reused when it belongs to the same
	// issuer and resource.
	Previous *Grant
	// Scopes replaces the probe's scopes, e.g. with a step-up union from StepUpScopes.
	Scopes []string
	// ExtraScopes are added to the requested scopes (e.g. api://app/.default for Entra). Default: none.
	ExtraScopes []string
	// ExtraParams are sent on the authorization request and on every token request (e.g. Auth0's
	// audience=…) and kept in the grant. Default: none.
	ExtraParams map[string]string
	// AssumePKCE is the user's explicit choice to sign in to an AS that does not advertise PKCE S256
	// (Probe.PKCE == PKCEMissing). S256 is sent anyway. Default: false, SignIn fails with ErrNoPKCE.
	AssumePKCE bool
	// OnURL, when set, is called once with the authorization URL as soon as it is ready, before and
	// independently of the Opener, so that the user can paste it if no browser opens. It must not block.
	OnURL func(authURL string)
}

// SignIn runs an interactive authorization-code sign-in through the browser (RFC 8252 loopback redirect,
// PKCE S256, state, RFC 8707 resource, RFC 9207 iss). At most one runs per server at a time
// (ErrSignInInProgress). It returns the token and the grant to persist.
//
// The loopback listener is bound first, so that a dynamic registration names its exact redirect URI;
// a registration's port is reused on later sign-ins, and when it cannot be bound the client is
// registered again on a new one. The authorization URL goes to opts.OnURL and to the Opener, which
// runs on its own: an opener that blocks or fails never stops a sign-in the user completes by pasting
// the URL. An AS that does not advertise PKCE S256 and is not known to support it is refused
// (ErrNoPKCE) unless opts.AssumePKCE; S256 is sent in every case. If a reused dynamic registration
// turns out evicted (invalid_client at the token endpoint) it registers again and asks the browser
// once more.
func (c *Client) SignIn(ctx context.Context, p *Probe, opts SignInOptions) (Token, Grant, error) {
	if c.opener == nil && opts.OnURL == nil {
		return Token{}, Grant{}, ErrNoOpener
	}
	if p == nil {
		return Token{}, Grant{}, errors.New("oauth: SignIn needs a probe")
	}
	if p.PKCE == PKCEMissing && !opts.AssumePKCE {
		return Token{}, Grant{}, noPKCE(p)
	}
	if err := c.begin(p.Resource); err != nil {
		return Token{}, Grant{}, err
	}
	defer c.end(p.Resource)
	g, err := c.chooseClient(p, opts)
	if err != nil {
		return Token{}, Grant{}, err
	}
	if p.PKCE == PKCEMissing {
		g.Quirks = withQuirk(g.Quirks, QuirkPKCEAssumed)
	}
	lb, g, err := c.bind(ctx, g)
	if err != nil {
		return Token{}, g, err
	}
	var reregister func(Grant) (Grant, error)
	if opts.Client == nil && opts.Previous != nil && g.ClientID == opts.Previous.ClientID && g.Registration == RegistrationDynamic {
		// A reused dynamic registration the AS has forgotten is replaced on this listener's port.
		reregister = func(g Grant) (Grant, error) { return c.register(ctx, g, lb.port()) }
	}
	tok, g, err := c.authorize(ctx, p.AuthServer, g, lb, opts, reregister)
	c.finish(lb, err)
	return tok, g, err
}

// bind opens the sign-in's loopback listener and, when the route is dynamic registration, registers
// its exact redirect URI: on the grant's port if it has one, else on a free one; a dynamic client
// whose port is taken is registered again on a free port (no user action). A user-registered port
// that is taken is an error: only the user can change the registration.
func (c *Client) bind(ctx context.Context, g Grant) (*loopback, Grant, error) {
	register := g.Registration == RegistrationDynamic && g.ClientID == ""
	if g.RedirectPort != 0 {
		c.reclaim(g.RedirectPort, nil) // the previous sign-in's listener may still linger there
	}
	lb, err := listenLoopback(g.RedirectPort)
	if err != nil && g.RedirectPort != 0 && g.Registration == RegistrationDynamic {
		lb, err, register = nil, nil, true
	}
	if lb == nil && err == nil {
		lb, err = listenLoopback(0)
	}
	if err != nil {
		return nil, g, err
	}
	if register {
		if g, err = c.register(ctx, g, lb.port()); err != nil {
			lb.close(err, false)
			return nil, g, err
		}
	}
	return lb, g, nil
}

// noPKCE is SignIn's refusal of an AS that does not advertise PKCE S256, naming the way out.
func noPKCE(p *Probe) error {
	issuer := "the authorization server"
	if p.AuthServer != nil {
		issuer = RedactURL(p.AuthServer.Issuer)
	}
	return &Error{Op: "sign in", Class: ClassMisconfigured, Err: fmt.Errorf(
		"%w: %s lists no S256 in code_challenge_methods_supported; if you trust it to support PKCE anyway, add the server with `authkeeper add %s --assume-pkce`",
		ErrNoPKCE, issuer, RedactURL(p.ServerURL))}
}
