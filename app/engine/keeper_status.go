package engine

import (
	"strings"

	"github.com/authkeeper/authkeeper/oauth"
)

// Cause says why a server is in its state. Code branches on it (the proxy's error subtype, the tray);
// people read ServerStatus.Message, which is never compared.
type Cause string

// Causes.
const (
	CauseNone               Cause = ""
	CauseNotSignedIn        Cause = "not-signed-in"        // no usable token stored
	CauseSignedOut          Cause = "signed-out"           // the user signed out
	CauseStepUp             Cause = "step-up"              // the server asked for more scope (see Keeper.StepUp)
	CauseRefreshRefused     Cause = "refresh-refused"      // the AS refused to renew the grant
	CauseClientRefused      Cause = "client-refused"       // client_credentials: the AS refused the client's credentials
	CauseTokenRefused       Cause = "token-refused"        // the server refused a token that cannot be renewed (no refresh token)
	CauseRefreshInterrupted Cause = "refresh-interrupted"  // a refresh may have spent the refresh token: authkeeper stopped during it, or its answer was lost
	CauseAuthRequired       Cause = "auth-required"        // a server added without auth demanded an OAuth sign-in
	CauseServerRefused      Cause = "server-refused"       // the server refused a token (revoked)
	CauseStaticExpired      Cause = "static-expired"       // a static token reached its expiry
	CauseRefreshFailing     Cause = "refresh-failing"      // refreshes fail transiently; retrying
	CauseRefreshNotRecorded Cause = "refresh-not-recorded" // the keychain would not record a refresh's start
	CauseKeychainUnreadable Cause = "keychain-unreadable"  // the stored credentials cannot be read
)

// Warning is a deviation from the MCP authorization spec authkeeper tolerated for a server's grant,
// with the sentence a person reads.
type Warning struct {
	Quirk   oauth.Quirk `json:"quirk"`
	Message string      `json:"message"`
}

// WarningsOf derives the warnings shown for grant g from its quirks. Issuer quirks name both issuers,
// so that the user can judge whether the mismatch is expected.
func WarningsOf(g oauth.Grant) []Warning {
	var out []Warning
	for _, q := range g.Quirks {
		msg := q.Describe()
		switch q {
		case oauth.QuirkIssuerMismatch:
			msg = "The server names " + orUnknown(g.AdvertisedIssuer) + " as its authorization server, but the one that " +
				"answers there is " + orUnknown(g.Issuer) + "; the grant is bound to " + orUnknown(g.Issuer) + "."
		case oauth.QuirkIssuerTemplate:
			if g.TenantIssuer != "" {
				msg = "The authorization server's issuer is the multi-tenant template " + g.Issuer +
					"; this grant is bound to the tenant " + g.TenantIssuer + "."
			}
		case oauth.QuirkScopeOnRefresh:
			if len(g.Scopes) > 0 {
				msg = "The authorization server needs the scopes on every refresh; authkeeper sends " + strings.Join(g.Scopes, " ") + "."
			}
		}
		out = append(out, Warning{Quirk: q, Message: msg})
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// quirkSummary is one line for the sign-in event: the quirks tolerated, or "" when there are none.
// It names the quirks only (the event carries them typed too); no token material can reach it.
func quirkSummary(g oauth.Grant) string {
	if len(g.Quirks) == 0 {
		return ""
	}
	names := make([]string, len(g.Quirks))
	for i, q := range g.Quirks {
		names[i] = string(q)
	}
	return "tolerated: " + strings.Join(names, ", ")
}

// Status is the keeper's line in the engine's snapshot.
func (k *Keeper) Status() ServerStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	return ServerStatus{
		Name:        k.cfg.Name,
		URL:         k.grant.Resource,
		State:       k.state,
		Cause:       k.cause,
		Expiry:      k.tok.Expiry,
		NoExpiry:    k.tok.AccessToken != "" && k.tok.Expiry.IsZero(),
		Scopes:      k.tok.Scopes,
		Last:        k.last,
		Next:        k.next,
		NextTrigger: k.trigger,
		Deferred:    k.state == StateDeferred,
		Message:     k.message,
		Auth:        k.authKindLocked(),
		GrantType:   k.grant.GrantType,
		Unsaved:     k.unsaved,
		Quirks:      k.grant.Quirks,
		Warnings:    WarningsOf(k.grant),
	}
}
