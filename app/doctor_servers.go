package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// The fourth check of `authkeeper doctor`: per server, three lines — the server answers, its token's
// state, and its authorization server answers. Every probe goes without credentials: the server gets
// a bare GET, its authorization server the discovery a sign-in starts with and a GET of its token
// endpoint. The token's state comes from the running owner, or without one from the store.

// fixASDown is the fix for an authorization server that does not answer.
const fixASDown = "check your network (and HTTPS_PROXY); if the provider is down, authkeeper retries by itself and the current token serves until it expires"

// doctorServer is one server to check: from the owner's status, or the settings when none runs.
type doctorServer struct {
	name, url string
	status    *engine.ServerStatus // nil when no owner answers
}

// checkServers checks every server the owner serves, or without an owner every configured one.
func (d *doctor) checkServers(ctx context.Context) []checkResult {
	var servers []doctorServer
	if d.snapshot != nil {
		for i := range d.snapshot.Servers {
			st := &d.snapshot.Servers[i]
			servers = append(servers, doctorServer{name: st.Name, url: d.serverURL(st.Name, st.URL), status: st})
		}
	} else {
		for _, s := range d.settings.Servers {
			servers = append(servers, doctorServer{name: s.Name, url: s.URL})
		}
	}
	if len(servers) == 0 {
		return []checkResult{{Check: "servers", Status: checkWarn, Detail: "none configured yet", Fix: "authkeeper add URL"}}
	}
	// Servers are probed at once (a dead host costs a timeout each), and reported in order.
	lines := make([][3]checkResult, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() {
			reach, ok := d.checkReach(ctx, s)
			tok, auth := d.checkToken(s)
			lines[i] = [3]checkResult{reach, tok, d.checkAuthServer(ctx, s, ok, auth)}
		})
	}
	wg.Wait()
	out := make([]checkResult, 0, 3*len(servers))
	for _, l := range lines {
		out = append(out, l[:]...)
	}
	return out
}

// serverURL is the URL the settings give server name (the MCP endpoint the user added), else fallback.
func (d *doctor) serverURL(name, fallback string) string {
	for _, s := range d.settings.Servers {
		if s.Name == name && s.URL != "" {
			return s.URL
		}
	}
	return fallback
}

// checkReach sends the server a GET without credentials: any answer but a 5xx means it is there (an
// OAuth server refuses with 401, which is what it should do). It reports whether the server answered.
func (d *doctor) checkReach(ctx context.Context, s doctorServer) (checkResult, bool) {
	r := checkResult{Check: "server " + s.name}
	status, err := d.get(ctx, s.url)
	switch {
	case err != nil:
		r.Status, r.Detail = checkFail, fmt.Sprintf("%s does not answer (%v)", s.url, err)
		r.Fix = "check the URL and your network; `authkeeper remove " + s.name + "` if the server is gone"
		return r, false
	case status >= 500:
		r.Status, r.Detail = checkFail, fmt.Sprintf("%s answers HTTP %d, an error on the server's side", s.url, status)
		r.Fix = "try again later, or ask the server's operator"
		return r, true
	}
	r.Status, r.Detail = checkOK, fmt.Sprintf("%s answers (HTTP %d without a token)", s.url, status)
	return r, true
}

// get sends a GET without credentials and returns the status; the body is not read.
func (d *doctor) get(ctx context.Context, u string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := d.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return 0, plainNetErr(ue.Err) // the line names the URL already
		}
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// authKind is how a server authenticates, as far as the doctor could tell.
type authKind int

const (
	authUnknown authKind = iota // no owner, and the store did not say
	authOAuth
	authStatic // a token the user pasted
	authNone   // the server needs no credentials
)

// checkToken reports the server's token state, from the owner's status or, without an owner, from the
// stored record (never printed), and how the server authenticates.
func (d *doctor) checkToken(s doctorServer) (checkResult, authKind) {
	r := checkResult{Check: "token " + s.name}
	if st := s.status; st != nil {
		auth := authOAuth
		switch st.Auth {
		case string(engine.RegistrationStaticToken):
			auth = authStatic
		case string(engine.RegistrationNoAuth):
			auth = authNone
		}
		return d.tokenFromStatus(r, *st, s.url, auth), auth
	}
	if d.store == nil {
		r.Status, r.Detail = checkWarn, "not checked: no authkeeper runs to ask, and the credential store is not usable (see above)"
		return r, authUnknown
	}
	return d.tokenFromRecord(r, s)
}

func (d *doctor) tokenFromStatus(r checkResult, st engine.ServerStatus, serverURL string, auth authKind) checkResult {
	left := ""
	switch {
	case auth == authNone:
		left = "the server needs no token"
	case st.NoExpiry:
		left = "the token has no expiry"
	case !st.Expiry.IsZero():
		left = "the token expires in " + st.Expiry.Sub(d.now()).Round(time.Second).String()
	}
	switch st.State {
	case engine.StateFresh, engine.StateRefreshing, engine.StateDeferred:
		r.Status, r.Detail = checkOK, string(st.State)
		if left != "" {
			r.Detail += ", " + left
		}
	case engine.StateDegraded:
		r.Status, r.Detail = checkWarn, "refreshes fail and are retried: "+st.Message
		r.Fix = "`authkeeper refresh " + st.Name + "` retries now"
	case engine.StateDisabled:
		r.Status, r.Detail = checkWarn, "turned off"
	default: // needs sign-in, revoked
		r.Status, r.Detail = checkFail, string(st.State)
		if st.Message != "" {
			r.Detail += ": " + st.Message
		}
		r.Fix = signInFix(st.Name, serverURL, auth)
		if st.Cause == engine.CauseKeychainUnreadable {
			r.Fix = fixUnlock
		}
	}
	if st.Unsaved && r.Status == checkOK {
		r.Status, r.Detail = checkWarn, r.Detail+"; the newest token is only in memory: the keychain refused to save it"
		r.Fix = fixUnlock
	}
	return r
}

// signInFix is the command that gives server name a new token.
func signInFix(name, serverURL string, auth authKind) string {
	if auth == authStatic {
		return "give it a new token: `authkeeper remove " + name + "`, then `authkeeper add " + serverURL + " --name " + name + " --token-stdin`"
	}
	return "authkeeper login " + name
}

func (d *doctor) tokenFromRecord(r checkResult, s doctorServer) (checkResult, authKind) {
	rec, err := d.store.Get(s.name)
	switch {
	case errors.Is(err, keychain.ErrNotFound):
		r.Status, r.Detail, r.Fix = checkFail, "not signed in: no token is stored", "authkeeper login "+s.name
		return r, authUnknown
	case err != nil:
		r.Status, r.Detail = checkFail, err.Error()
		if errors.Is(err, keychain.ErrLocked) {
			r.Fix = fixUnlock
		}
		return r, authUnknown
	}
	now := d.now()
	expired := !rec.Expiry.IsZero() && !rec.Expiry.After(now)
	left := "no expiry"
	if !rec.Expiry.IsZero() {
		left = "expires in " + rec.Expiry.Sub(now).Round(time.Second).String()
	}
	switch rec.Binding.RegistrationMethod {
	case string(engine.RegistrationNoAuth):
		r.Status, r.Detail = checkOK, "the server needs no token"
		return r, authNone
	case string(engine.RegistrationStaticToken):
		if expired {
			r.Status, r.Detail, r.Fix = checkFail, "the static token expired", signInFix(s.name, s.url, authStatic)
		} else {
			r.Status, r.Detail = checkOK, "a static token, "+left
		}
		return r, authStatic
	}
	switch {
	case rec.RefreshToken != "":
		r.Status, r.Detail = checkOK, "signed in; authkeeper renews the token while it runs (stored token: "+ifExpired(expired, left)+")"
	case rec.Binding.GrantType == string(oauth.GrantClientCredentials):
		r.Status, r.Detail = checkOK, "a machine identity (client credentials); authkeeper gets new tokens while it runs"
	case rec.AccessToken != "" && !expired:
		r.Status, r.Detail = checkOK, "signed in; the token "+left+" and cannot be renewed without a sign-in"
	default:
		r.Status, r.Detail, r.Fix = checkFail, "the token expired and there is nothing to renew it with", "authkeeper login "+s.name
	}
	return r, authOAuth
}

func ifExpired(expired bool, left string) string {
	if expired {
		return "expired"
	}
	return left
}

// checkAuthServer finds the server's authorization server the way a sign-in does (protected-resource
// metadata, then the AS's own) and checks that its token endpoint answers. reachable says whether the
// server answered: without it there is nothing to discover from.
func (d *doctor) checkAuthServer(ctx context.Context, s doctorServer, reachable bool, auth authKind) checkResult {
	r := checkResult{Check: "auth server " + s.name}
	switch {
	case auth == authStatic:
		r.Status, r.Detail = checkOK, "none: the server takes a static token"
		return r
	case auth == authNone:
		r.Status, r.Detail = checkOK, "none: the server needs no sign-in"
		return r
	case !reachable:
		r.Status, r.Detail = checkWarn, "not checked: the server, which names its authorization server, does not answer"
		return r
	}
	client, err := oauth.New(oauth.Config{HTTPClient: d.http})
	if err != nil {
		r.Status, r.Detail = checkFail, err.Error()
		return r
	}
	pctx, cancel := context.WithTimeout(ctx, 2*doctorTimeout)
	defer cancel()
	p, err := client.Probe(pctx, s.url)
	if err != nil {
		r.Status, r.Detail, r.Fix = checkFail, "cannot be reached: "+err.Error(), fixASDown
		return r
	}
	if p.Requirement != oauth.OAuthSignIn || p.AuthServer == nil {
		if auth == authOAuth {
			r.Status, r.Detail = checkFail, "the server no longer names an authorization server: "+p.Reason
			r.Fix = "authkeeper login " + s.name
			return r
		}
		r.Status, r.Detail = checkOK, "none: "+p.Reason
		return r
	}
	as := p.AuthServer
	status, err := d.get(ctx, as.TokenEndpoint)
	switch {
	case err != nil:
		r.Status, r.Detail, r.Fix = checkFail, fmt.Sprintf("%s: its token endpoint %s does not answer (%v)", as.Issuer, as.TokenEndpoint, err), fixASDown
	case status >= 500:
		r.Status, r.Detail, r.Fix = checkFail, fmt.Sprintf("%s: its token endpoint answers HTTP %d", as.Issuer, status), fixASDown
	default:
		r.Status, r.Detail = checkOK, as.Issuer+" answers (metadata and token endpoint)"
	}
	return r
}
