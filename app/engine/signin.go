package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// AddRequest describes a server to add.
type AddRequest struct {
	Name string // required; see keychain.ValidName
	URL  string // the MCP endpoint, required
	// Client is a client id registered by hand (Entra ID and other enterprise IdPs), with its secret or
	// private key if it has one; nil registers automatically. Required with ClientCredentials.
	Client *oauth.StaticClient
	// Device signs in with the device flow instead of the browser; OnDevice receives the code to show.
	Device   bool
	OnDevice func(*oauth.DeviceAuthorization)
	// OnURL, if set, receives the authorization URL of a browser sign-in once discovery and
	// registration succeeded, as the browser is asked to open it: show it, so that the user can open it
	// by hand. It must not block.
	OnURL func(authURL string)
	// StaticToken is a token or API key the user pasted, for a server without OAuth sign-in; it is kept
	// in the keychain and sent as a bearer token until StaticExpiry (zero: no expiry).
	StaticToken  string
	StaticExpiry time.Time
	// Scopes are requested on every sign-in besides the server's own (Entra's api://…/.default);
	// Params are sent on the authorization request and every token request (audience=…); AssumePKCE
	// signs in to an AS that does not advertise PKCE S256. All three are kept in the settings.
	Scopes     []string
	Params     map[string]string
	AssumePKCE bool
	// ClientCredentials obtains tokens with the client_credentials grant (a machine identity): Client
	// must name the client id and carry a secret or a private key. No browser is involved, and the
	// keeper asks for a new token before each one expires.
	ClientCredentials bool
	// IdP signs in through the user's enterprise identity provider instead of a browser (MCP's
	// cross-app access, SEP-990): the IdP exchanges the user's ID token for an identity assertion that
	// the server's authorization server redeems for Client, which must name authkeeper's client id
	// there (with its secret or key, if it has one). The IdP's token endpoint and client id go to the
	// settings, the secrets to the keychain; the ID token is used once and never kept. Without a
	// refresh token from the AS, the server needs a sign-in with a new ID token when its token runs out.
	IdP *oauth.EnterpriseIdP
}

// SignInRequest tunes a sign-in to a server already added.
type SignInRequest struct {
	// Device signs in with the device flow; OnDevice receives the code to show.
	Device   bool
	OnDevice func(*oauth.DeviceAuthorization)
	// OnURL receives the authorization URL of a browser sign-in (see AddRequest.OnURL).
	OnURL func(authURL string)
	// IDToken is a new ID token from the user's identity provider, for a cross-app access server (see
	// AddRequest.IdP); it is used once and never kept. Other servers ignore it.
	IDToken string

	// idp is the identity provider of a cross-app access sign-in, completed by Add and SignInWith.
	idp *oauth.EnterpriseIdP
}

// ErrNeedsIDToken: a cross-app access sign-in was asked for without the user's ID token. Nothing can
// stand in for it: authkeeper does not sign in to the identity provider itself.
var ErrNeedsIDToken = errors.New("cross-app access needs a new ID token from your identity provider: " +
	"run `authkeeper login NAME --id-token-stdin` (or with $AUTHKEEPER_IDP_ID_TOKEN)")

// SettingsFor is the settings entry req creates.
func (req AddRequest) SettingsFor() (keychain.Server, error) {
	srv := keychain.Server{Name: req.Name, URL: req.URL, Scopes: slices.Clone(req.Scopes), Params: req.Params,
		AssumePKCE: req.AssumePKCE}
	if req.Client != nil {
		srv.ClientID = req.Client.ID
	}
	switch {
	case req.ClientCredentials && req.IdP != nil:
		return srv, errors.New("choose one of the client_credentials grant and cross-app access")
	case req.ClientCredentials:
		if req.Client == nil || req.Client.ID == "" || (req.Client.Secret == "" && req.Client.PrivateKey == "") {
			return srv, errors.New("the client_credentials grant needs a client id and its secret or private key")
		}
		srv.GrantType = keychain.GrantClientCredentials
	case req.IdP != nil:
		if req.Client == nil || req.Client.ID == "" {
			return srv, errors.New("cross-app access needs authkeeper's client id at the server's authorization server")
		}
		if req.IdP.IDToken == "" {
			return srv, errors.New("cross-app access needs the user's ID token from the identity provider")
		}
		srv.GrantType, srv.IdPTokenEndpoint, srv.IdPClientID = keychain.GrantCrossAppAccess, req.IdP.TokenEndpoint, req.IdP.ClientID
	}
	return srv, srv.Validate()
}

// Add probes the server, signs in when it needs OAuth, and only then saves it: a server whose sign-in
// fails leaves nothing behind — no settings entry, no keychain record.
func (e *Engine) Add(ctx context.Context, req AddRequest) error {
	srv, err := req.SettingsFor()
	if err != nil {
		return err
	}
	if err := oauth.CheckURL(req.URL); err != nil {
		// The probe applies the same rule, but a static token skips it: without this check, an API key
		// would go to a remote host in clear text on every proxied call.
		return fmt.Errorf("%s: a server's URL must be https (plain http only to this machine), since its credentials go there: %w",
			req.Name, err)
	}
	// Reserve the name for the whole add, so two adds of one name cannot both sign in and save.
	e.mu.Lock()
	_, exists := e.keepers[req.Name]
	if exists || e.adding[req.Name] {
		e.mu.Unlock()
		return fmt.Errorf("%q: %w", req.Name, ErrServerExists)
	}
	e.adding[req.Name] = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.adding, req.Name)
		e.mu.Unlock()
	}()
	if shared, err := e.sharedGrant(srv, req); shared || err != nil {
		return err
	}
	var (
		tok oauth.Token
		g   = oauth.Grant{Resource: oauth.ResourceOf(req.URL)} // as a sign-in names it: without the query
	)
	if req.StaticToken != "" {
		// The user's token is all there is to it: no probe, which could only say what the user knows.
		tok = oauth.Token{AccessToken: req.StaticToken, TokenType: "Bearer", Expiry: req.StaticExpiry}
		g.Registration = RegistrationStaticToken
		srv.Scopes, srv.Params, srv.AssumePKCE, srv.GrantType = nil, nil, false, ""
		srv.IdPTokenEndpoint, srv.IdPClientID = "", ""
	} else {
		p, err := e.oauth.Probe(ctx, req.URL)
		if err != nil {
			return fmt.Errorf("probe %s: %w", oauth.RedactURL(req.URL), err)
		}
		switch {
		case p.Requirement == oauth.OAuthSignIn:
			sreq := SignInRequest{Device: req.Device, OnDevice: req.OnDevice, OnURL: req.OnURL, idp: req.IdP}
			if tok, g, err = e.signIn(ctx, p, srv, req.Client, nil, sreq); err != nil {
				return err
			}
		case req.ClientCredentials || req.IdP != nil:
			return fmt.Errorf("%s names no authorization server to get a token from: %s", oauth.RedactURL(req.URL), p.Reason)
		case p.Requirement == oauth.StaticToken:
			// The URL is shown without its query (which may hold a key): the user has it in full.
			return fmt.Errorf("%s needs a static token or API key: add it with `authkeeper add URL --token-stdin` (or "+
				"AUTHKEEPER_TOKEN in the environment): %s", oauth.RedactURL(req.URL), p.Reason)
		default:
			g.Registration = RegistrationNoAuth
		}
	}
	return e.save(srv, tok, g)
}

// save stores a new server's credentials and settings and starts its keeper.
func (e *Engine) save(srv keychain.Server, tok oauth.Token, g oauth.Grant) error {
	// Credentials first: a keychain failure must not leave a server entry without them. (A no-auth
	// server's record holds no secret, only the marker that it needs none.)
	if err := e.putNew(srv.Name, ToRecord(tok, g)); err != nil {
		return fmt.Errorf("%s: save credentials: %w", srv.Name, err)
	}
	return e.installServer(srv, Event{Kind: EventAdded, Server: srv.Name, Trigger: TriggerUser, Outcome: OutcomeOK, Scopes: tok.Scopes,
		Expiry: tok.Expiry, Quirks: g.Quirks, Message: quirkSummary(g)}, func() error {
		// Leave nothing half-added: drop the credentials and tell the AS we are done with them.
		return errors.Join(e.store.Delete(srv.Name), e.revoke(context.Background(), tok, g))
	})
}

// installServer adds srv to the settings and starts its keeper from the stored record, then publishes
// ev. If the settings cannot be saved, undo runs (a sign-in's deletes the record and revokes it).
func (e *Engine) installServer(srv keychain.Server, ev Event, undo func() error) error {
	e.mu.Lock()
	next := e.settings
	next.Servers = append(append([]keychain.Server(nil), e.settings.Servers...), srv)
	if err := e.conf.Save(next); err != nil {
		e.mu.Unlock()
		return errors.Join(fmt.Errorf("%s: save settings: %w", srv.Name, err), undo())
	}
	e.settings = next
	e.mu.Unlock()
	k, err := e.newKeeper(srv)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.closing {
		// The engine is closing (quit, or a hand-over to the app): a keeper started now would never be
		// closed and would refresh next to the new owner. The record is saved; the next owner loads it.
		e.mu.Unlock()
		k.Close()
		return fmt.Errorf("%s: %w", srv.Name, errClosed)
	}
	e.keepers[srv.Name] = k
	e.mu.Unlock()
	k.Start()
	if e.joining() {
		e.fleet.f.Join(srv.Name)
	}
	e.publish(ev)
	return nil
}

// SignIn signs server name in again (browser, or device flow when device is set) and installs the new
// tokens; the proxy serves them from the next request on.
func (e *Engine) SignIn(ctx context.Context, name string, device bool, onDevice func(*oauth.DeviceAuthorization)) error {
	return e.SignInWith(ctx, name, SignInRequest{Device: device, OnDevice: onDevice})
}

// SignInWith is SignIn with every option. A client_credentials server asks for a new token with its
// stored credentials instead, and a cross-app access server exchanges req.IDToken at its identity
// provider: no browser.
func (e *Engine) SignInWith(ctx context.Context, name string, req SignInRequest) error {
	k, err := e.keeper(name)
	if err != nil {
		return err
	}
	srv, err := e.Server(name)
	if err != nil {
		return err
	}
	prev := k.Grant()
	var client *oauth.StaticClient
	if srv.ClientID != "" {
		client = &oauth.StaticClient{ID: srv.ClientID, Secret: prev.ClientSecret, AuthMethod: prev.AuthMethod,
			RedirectPort: prev.RedirectPort, PrivateKey: prev.PrivateKey, KeyID: prev.KeyID}
	}
	if srv.GrantType == keychain.GrantCrossAppAccess {
		// Both refusals come before any request: nothing the servers say could change them.
		if req.IDToken == "" {
			return fmt.Errorf("%s: %w", name, ErrNeedsIDToken)
		}
		if prev.GrantType != oauth.GrantJWTBearer {
			// The record and its secrets are gone (a sign-out and a restart): only the user has them.
			return fmt.Errorf("%s: its client secrets are not stored any more: remove the server and add it again with --cross-app", name)
		}
		req.idp = &oauth.EnterpriseIdP{IDToken: req.IDToken, TokenEndpoint: srv.IdPTokenEndpoint, ClientID: srv.IdPClientID,
			ClientSecret: prev.IdPClientSecret}
	}
	p, err := e.oauth.Probe(ctx, srv.URL)
	if err != nil {
		return fmt.Errorf("probe %s: %w", oauth.RedactURL(srv.URL), err)
	}
	if ch := k.Challenge(); p.Requirement == oauth.NoAuth && len(ch) > 0 {
		// The probe was let through, but the server refused a forwarded request with this challenge
		// (see Keeper.AuthRequired): it names the authorization server the probe could not find.
		if p, err = e.oauth.ProbeChallenge(ctx, srv.URL, ch); err != nil {
			return fmt.Errorf("probe %s: %w", oauth.RedactURL(srv.URL), err)
		}
	}
	if p.Requirement != oauth.OAuthSignIn {
		return fmt.Errorf("%s: nothing to sign in to: %s", name, p.Reason)
	}
	tok, g, err := e.signIn(ctx, p, srv, client, &prev, req)
	if err != nil {
		return err
	}
	return k.Adopt(tok, g)
}

// signIn obtains a token for srv: the client_credentials grant for a machine identity, cross-app
// access through req.idp for an enterprise-managed server, else a browser or device sign-in. The
// server's extra scopes, parameters and PKCE choice go into every one of them (first sign-in, login,
// step-up), and prev's scopes (a step-up's union) replace the probe's.
func (e *Engine) signIn(ctx context.Context, p *oauth.Probe, srv keychain.Server, client *oauth.StaticClient,
	prev *oauth.Grant, req SignInRequest) (oauth.Token, oauth.Grant, error) {
	opts := oauth.SignInOptions{Client: client, Previous: prev, ExtraScopes: srv.Scopes, ExtraParams: srv.Params,
		AssumePKCE: srv.AssumePKCE, OnURL: req.OnURL}
	if prev != nil && len(prev.Scopes) > 0 {
		opts.Scopes = prev.Scopes
	}
	switch srv.GrantType {
	case keychain.GrantClientCredentials:
		if client == nil || (client.Secret == "" && client.PrivateKey == "") {
			return oauth.Token{}, oauth.Grant{}, fmt.Errorf("%s: its client secret or key is not stored any more: "+
				"remove the server and add it again with --client-credentials", srv.Name)
		}
		return e.oauth.ClientCredentials(ctx, p, *client, opts)
	case keychain.GrantCrossAppAccess:
		if client == nil || req.idp == nil {
			return oauth.Token{}, oauth.Grant{}, fmt.Errorf("%s: cross-app access needs its client and identity provider", srv.Name)
		}
		if req.idp.IDToken == "" {
			return oauth.Token{}, oauth.Grant{}, fmt.Errorf("%s: %w", srv.Name, ErrNeedsIDToken)
		}
		return e.oauth.CrossAppAccess(ctx, p, *client, *req.idp, opts)
	}
	if !req.Device {
		return e.oauth.SignIn(ctx, p, opts)
	}
	d, err := e.oauth.StartDevice(ctx, p, opts)
	if err != nil {
		return oauth.Token{}, oauth.Grant{}, err
	}
	if req.OnDevice != nil {
		req.OnDevice(d)
	}
	return e.oauth.PollDevice(ctx, d)
}
