package engine

import "github.com/authkeeper/authkeeper/oauth"

// Trigger says why a refresh ran or an event happened. Code branches on these constants only; the
// strings are what the audit log, the control API and the Status window show.
type Trigger string

// Triggers.
const (
	TriggerSchedule Trigger = "schedule"  // the planned refresh time came
	TriggerDeadline Trigger = "deadline"  // refreshed while busy because expiry was near
	TriggerRetry    Trigger = "retry"     // a retry after a transient failure
	TriggerIdle     Trigger = "idle"      // a refresh deferred by a busy agent turn ran once it ended
	TriggerWake     Trigger = "wake"      // the machine woke from sleep
	TriggerExpiring Trigger = "expiring"  // a caller asked for a token about to expire
	TriggerProxy401 Trigger = "proxy-401" // the server refused a token through the proxy
	// TriggerProxyWeak: the server's answer through the proxy said authentication failed (a JSON-RPC
	// error in a 200 body), which is weaker evidence than a 401 (see Keeper.RejectedWeakly).
	TriggerProxyWeak Trigger = "proxy-weak"
	TriggerUser      Trigger = "user"     // the user asked: refresh now, add, remove
	TriggerSignIn    Trigger = "sign-in"  // an interactive sign-in
	TriggerLoad      Trigger = "load"     // found while loading the credentials at start
	TriggerKeychain  Trigger = "keychain" // the keychain answered again
	TriggerPersist   Trigger = "persist"  // saving to the keychain
	TriggerShutdown  Trigger = "shutdown" // the engine closed
	TriggerStepUp    Trigger = "step-up"  // the server asked for more scope
	TriggerExpiry    Trigger = "expiry"   // a token that cannot be renewed expired
	TriggerFleet     Trigger = "fleet"    // another instance of the fleet refreshed, or asked for a refresh
)

// Outcome is how a refresh or an action ended: OutcomeOK, an OAuth error class (OutcomeReauth …), or
// one of the other constants below.
type Outcome string

// Outcomes.
const (
	OutcomeOK                Outcome = "ok"
	OutcomeError             Outcome = "error"    // a failure that is not an OAuth error (a save, a load)
	OutcomeKeychain          Outcome = "keychain" // the keychain refused to record the refresh's start
	OutcomeRefused           Outcome = "refused"  // the server refused the token
	OutcomeExpired           Outcome = "expired"  // the token expired with nothing to renew it
	OutcomeInsufficientScope Outcome = "insufficient_scope"
	// The OAuth error classes (oauth.Class), as their String() spells them.
	OutcomeReauth        Outcome = "re-auth needed"
	OutcomeClientInvalid Outcome = "client invalid"
	OutcomeTransient     Outcome = "transient"
	OutcomeMisconfigured Outcome = "misconfigured"
)

// outcomeOf is the Outcome of an OAuth error class.
func outcomeOf(c oauth.Class) Outcome {
	switch c {
	case oauth.ClassReauth:
		return OutcomeReauth
	case oauth.ClassClientInvalid:
		return OutcomeClientInvalid
	case oauth.ClassTransient:
		return OutcomeTransient
	}
	return OutcomeMisconfigured
}

// ASRefused reports whether the authorization server refused to renew the grant (it wants a sign-in,
// no longer knows the client, or the configuration cannot work), as opposed to a transient failure.
func (o Outcome) ASRefused() bool {
	return o == OutcomeReauth || o == OutcomeClientInvalid || o == OutcomeMisconfigured
}
