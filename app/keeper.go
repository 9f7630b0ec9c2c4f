package app

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// State is where a server's credentials stand.
type State string

// States.
const (
	StateFresh       State = "fresh"         // a valid token; the next refresh is planned
	StateRefreshing  State = "refreshing"    // a refresh is in flight
	StateDeferred    State = "deferred"      // a due refresh waits for the agent turn to end
	StateDegraded    State = "degraded"      // refreshes fail transiently; retrying with backoff
	StateNeedsSignIn State = "needs-sign-in" // the grant is gone; waiting for the user
	StateRevoked     State = "revoked"       // the server rejected a token before its expiry; sign in again
	StateDisabled    State = "disabled"      // the user turned the server off
)

// ErrNeedsSignIn is returned by Token when no valid token can be had without the user.
var ErrNeedsSignIn = errors.New("sign-in required")

// Refresher is the part of the OAuth client a keeper needs: one refresh-token grant.
type Refresher interface {
	Refresh(ctx context.Context, g oauth.Grant, refreshToken string) (oauth.Token, oauth.Grant, error)
}

// CredentialStore is the part of the keychain a keeper needs.
type CredentialStore interface {
	Put(name string, rec keychain.Record) (keychain.Record, error)
}

// KeeperConfig configures a Keeper. Every field without a stated default is required.
type KeeperConfig struct {
	Name    string          // the server's name
	Clock   Clock           // time and timers
	Store   CredentialStore // where new tokens are persisted before anyone sees them
	Auth    Refresher       // does the refresh grant
	Busy    *Busy           // agent-turn leases; refreshes wait while busy
	Emit    func(Event)     // receives every event; must not block
	Policy  Policy          // when to refresh; zero means the defaults
	Backoff Backoff         // retry spacing; zero means 5 s … 5 min
	// Skew is how close to expiry Token refreshes before answering; default 30 s.
	Skew time.Duration
	// RefreshTimeout bounds one refresh request; default 30 s. Refreshes never use a caller's context:
	// an agent cancelling its request must not cancel the refresh other callers wait on.
	RefreshTimeout time.Duration
	// Rand returns uniform numbers in [0, 1) for jitter; default math/rand/v2.
	Rand func() float64
	// OnUnreadable, if set, is called whenever a caller asks for a token while the stored credentials
	// could not be read: the engine then tries the keychain again. It is called with the keeper's lock
	// held, so it must neither block nor call back into the keeper synchronously.
	OnUnreadable func()
}

// LastRefresh records the outcome of the latest refresh attempt.
type LastRefresh struct {
	At      time.Time `json:"at,omitzero"`
	Trigger string    `json:"trigger,omitempty"`
	Outcome string    `json:"outcome,omitempty"` // "ok" or the error class
	Error   string    `json:"error,omitempty"`
}

// ServerStatus is one server's line in the engine's snapshot.
type ServerStatus struct {
	Name        string      `json:"name"`
	URL         string      `json:"url"`
	State       State       `json:"state"`
	Expiry      time.Time   `json:"expiry,omitzero"`
	Scopes      []string    `json:"scopes,omitempty"`
	Last        LastRefresh `json:"last_refresh"`
	Next        time.Time   `json:"next_refresh,omitzero"`
	NextTrigger string      `json:"next_trigger,omitempty"`
	Deferred    bool        `json:"deferred"`
	Message     string      `json:"message,omitempty"`
	// Auth is how the server is authenticated: "oauth" (refreshed by authkeeper), "static-token" (a
	// token the user pasted) or "no-auth". Only "oauth" servers can be refreshed or signed in again.
	Auth string `json:"auth"`
	// Unsaved is set while the newest token pair is only in memory because the keychain refused the
	// save (it is retried); an exit now would lose it.
	Unsaved bool `json:"unsaved,omitempty"`
}

// Keeper owns one server's grant: it hands out valid access tokens, refreshes them ahead of expiry
// (single-flight: one refresh per grant at a time, ever), persists every new token pair before any
// caller can see it, and plans the next refresh. Safe for concurrent use.
type Keeper struct {
	cfg KeeperConfig

	mu        sync.Mutex
	tok       oauth.Token
	grant     oauth.Grant
	issued    time.Time // when tok was obtained: the start of its lifetime
	state     State
	message   string
	plan      Plan
	next      time.Time // when the timer fires
	trigger   string    // why it fires: schedule | deadline | retry | idle | wake
	timer     Timer
	gen       uint64 // bumped whenever the timer is re-armed; stale timers check it
	attempt   int    // consecutive transient failures
	flight    *flight
	last      LastRefresh
	announced bool  // needs-sign-in already announced in this episode
	unsaved   bool  // the current pair is only in memory: the last Put failed
	saving    bool  // a save retry is scheduled
	saveTries int   // consecutive failed saves, for the retry backoff
	lastErr   error // the last refresh failure, returned while backing off
	closed    bool
	// unreadable is why the stored credentials could not be read (a locked or absent keychain); nil
	// once they were. While set, nothing is refreshed — the refresh token is in the keychain — and
	// Token fails with ErrCredentialsUnreadable until Restore installs the record.
	unreadable error
	// epoch is bumped whenever the token pair is replaced or dropped other than by a refresh (sign-in,
	// logout, removal). A refresh that started in an older epoch is stale: its result is discarded,
	// never persisted, so it cannot overwrite what the user just did.
	epoch uint64

	// saveMu orders every write of this server's record, so the keychain always ends up with the
	// newest pair: a slow save of an older pair can never land after a newer one.
	saveMu sync.Mutex
}

// flight is one refresh in progress; waiters block on done.
type flight struct {
	done  chan struct{}
	err   error
	epoch uint64
}

// errClosed is returned by a keeper whose server was removed or whose engine stopped.
var errClosed = errors.New("the server was removed or authkeeper is shutting down")

// NewKeeper returns a keeper holding tok (obtained at issued) under grant. A token with no refresh
// token and no remaining life starts in needs-sign-in. Call Start to plan the first refresh.
func NewKeeper(cfg KeeperConfig, tok oauth.Token, grant oauth.Grant, issued time.Time) (*Keeper, error) {
	if cfg.Name == "" || cfg.Clock == nil || cfg.Store == nil || cfg.Auth == nil || cfg.Busy == nil || cfg.Emit == nil {
		return nil, errors.New("keeper config: Name, Clock, Store, Auth, Busy and Emit are required")
	}
	p, err := cfg.Policy.Validate()
	if err != nil {
		return nil, fmt.Errorf("keeper %s: %w", cfg.Name, err)
	}
	cfg.Policy = p
	if cfg.Skew == 0 {
		cfg.Skew = 30 * time.Second
	}
	if cfg.RefreshTimeout == 0 {
		cfg.RefreshTimeout = 30 * time.Second
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	k := &Keeper{cfg: cfg, tok: tok, grant: grant, issued: issued}
	k.initialStateLocked()
	return k, nil
}

// initialStateLocked sets the state for a token pair just loaded. Caller holds k.mu (or owns k).
func (k *Keeper) initialStateLocked() {
	k.state, k.message = StateFresh, ""
	switch {
	case k.unmanagedLocked():
		if _, err := k.unmanagedTokenLocked(); err != nil {
			k.state, k.message = StateNeedsSignIn, "the static token expired"
		}
	case k.tok.RefreshToken == "" && !k.tok.Valid(k.cfg.Clock.Now(), 0):
		k.state, k.message = StateNeedsSignIn, "no refresh token stored"
	}
}

// ErrCredentialsUnreadable means the server's stored credentials could not be read: the keychain is
// locked or does not answer. No sign-in is needed: the engine reads them again once it can.
var ErrCredentialsUnreadable = errors.New("its credentials cannot be read from the keychain")

// SetUnreadable records that the stored credentials could not be read because of err. The server is
// degraded, nothing is refreshed, and Token fails with ErrCredentialsUnreadable until Restore.
func (k *Keeper) SetUnreadable(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.setUnreadableLocked(err)
	k.stopTimerLocked()
}

func (k *Keeper) setUnreadableLocked(err error) {
	k.unreadable = err
	k.state, k.message = StateDegraded, "cannot read its credentials from the keychain: "+err.Error()
}

// StillUnreadable records a new cause for credentials that are still unreadable; it does nothing when
// they were installed meanwhile (a sign-in during a slow keychain read wins).
func (k *Keeper) StillUnreadable(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.unreadable == nil || k.closed {
		return
	}
	k.setUnreadableLocked(err)
}

// Unreadable reports whether the stored credentials are still to be read.
func (k *Keeper) Unreadable() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.unreadable != nil
}

// Restore installs the record read once the keychain answers (tok and g empty when there is none)
// and plans the next refresh, unless the credentials were not unreadable any more: a sign-in, logout
// or removal since then wins. It reports whether it installed anything.
func (k *Keeper) Restore(tok oauth.Token, g oauth.Grant, issued time.Time) bool {
	k.mu.Lock()
	if k.unreadable == nil || k.closed {
		k.mu.Unlock()
		return false
	}
	k.unreadable = nil
	k.tok, k.grant, k.issued = tok, g, issued
	k.initialStateLocked()
	k.planLocked()
	k.mu.Unlock()
	k.emit(Event{Kind: EventRecovered, Trigger: "keychain", Outcome: "ok", Message: "read its credentials from the keychain"})
	return true
}

// unreadableErrLocked is, while the credentials are unreadable, the error for a caller (and the engine
// is told to read the keychain again); nil otherwise. Caller holds k.mu.
func (k *Keeper) unreadableErrLocked() error {
	if k.unreadable == nil {
		return nil
	}
	if k.cfg.OnUnreadable != nil {
		k.cfg.OnUnreadable()
	}
	return fmt.Errorf("%s: %w: %v", k.cfg.Name, ErrCredentialsUnreadable, k.unreadable)
}

// Start plans the next refresh (or runs it at once when it is already due).
func (k *Keeper) Start() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.planLocked()
}

// Close stops the keeper: no new refresh starts, a refresh in flight completes and is persisted
// (waiting up to the refresh timeout), and a pair whose save failed gets one last save attempt, so a
// rotated refresh token is not lost when authkeeper exits.
func (k *Keeper) Close() {
	k.mu.Lock()
	k.closed = true
	k.stopTimerLocked()
	f := k.flight
	k.mu.Unlock()
	if f != nil {
		select {
		case <-f.done:
		case <-time.After(k.cfg.RefreshTimeout + 5*time.Second):
		}
	}
	k.saveMu.Lock()
	defer k.saveMu.Unlock()
	k.mu.Lock()
	unsaved, rec := k.unsaved, toRecord(k.tok, k.grant)
	k.mu.Unlock()
	if unsaved {
		_, err := k.cfg.Store.Put(k.cfg.Name, rec)
		if err == nil {
			k.mu.Lock()
			k.unsaved = false
			k.mu.Unlock()
			return
		}
		k.emit(Event{Kind: EventWarning, Trigger: "shutdown", Outcome: "error",
			Message: "the newest token could not be saved before exit; the next start will ask for a sign-in: " + err.Error()})
	}
}

// Token returns a valid access token, refreshing first when the current one is within the skew of
// its expiry. ctx bounds only the wait, never the refresh itself. It never refreshes a grant the AS
// has declared dead, nor ahead of a backoff the AS asked for (Retry-After).
func (k *Keeper) Token(ctx context.Context) (string, error) {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return "", fmt.Errorf("%s: %w", k.cfg.Name, errClosed)
	}
	if err := k.unreadableErrLocked(); err != nil {
		k.mu.Unlock()
		return "", err
	}
	if k.unmanagedLocked() {
		defer k.mu.Unlock()
		return k.unmanagedTokenLocked()
	}
	now := k.cfg.Clock.Now()
	switch k.state {
	case StateRevoked, StateDisabled:
		// The server refused this token: handing it out again only repeats the refusal.
		err := k.stateErrLocked()
		k.mu.Unlock()
		return "", err
	case StateNeedsSignIn, StateDegraded:
		// No refresh now: the grant is dead, or a retry is scheduled. A still-valid token serves.
		if k.tok.Valid(now, 0) {
			t := k.tok.AccessToken
			k.mu.Unlock()
			return t, nil
		}
		if k.state == StateNeedsSignIn || now.Before(k.next) {
			err := k.stateErrLocked()
			k.mu.Unlock()
			return "", err
		}
	}
	// The skew scales down for short-lived tokens: a 30 s margin on a 20 s token would refresh on
	// every call. It is never negative.
	skew := max(0, min(k.cfg.Skew, k.tok.Expiry.Sub(k.issued)/4))
	if k.tok.Valid(now, skew) {
		t := k.tok.AccessToken
		k.mu.Unlock()
		return t, nil
	}
	f := k.startLocked("expiring")
	k.mu.Unlock()
	if err := wait(ctx, f); err != nil {
		// The refresh failed, but a token inside the skew is still better than none.
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.tok.Valid(k.cfg.Clock.Now(), 0) {
			return k.tok.AccessToken, nil
		}
		return "", err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.tok.Valid(k.cfg.Clock.Now(), 0) {
		return "", fmt.Errorf("%s: the authorization server issued an already expired token", k.cfg.Name)
	}
	return k.tok.AccessToken, nil
}

// ForceRefresh refreshes now, or joins the refresh already in flight: fifty concurrent callers cause
// one token request. It returns when that refresh has finished (or ctx ends). A grant the AS declared
// dead is not refreshed again (its refresh token would only be replayed): sign in instead.
func (k *Keeper) ForceRefresh(ctx context.Context, reason string) error {
	k.mu.Lock()
	switch {
	case k.closed:
		k.mu.Unlock()
		return fmt.Errorf("%s: %w", k.cfg.Name, errClosed)
	case k.unreadable != nil:
		err := k.unreadableErrLocked()
		k.mu.Unlock()
		return err
	case k.unmanagedLocked():
		k.mu.Unlock()
		return fmt.Errorf("%s: a static token or a server without auth has nothing to refresh", k.cfg.Name)
	case k.state == StateDisabled, k.state == StateNeedsSignIn, k.state == StateRevoked:
		err := k.stateErrLocked()
		k.mu.Unlock()
		return err
	}
	f := k.startLocked(reason)
	k.mu.Unlock()
	return wait(ctx, f)
}

// Rejected tells the keeper that the server refused token (a 401 on a token we believed valid). If
// the keeper has moved on to a newer token already, it returns at once; otherwise it forces one
// refresh, and a refresh that then fails for want of a grant marks the server revoked.
func (k *Keeper) Rejected(ctx context.Context, token string) error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return fmt.Errorf("%s: %w", k.cfg.Name, errClosed)
	}
	if err := k.unreadableErrLocked(); err != nil {
		k.mu.Unlock()
		return err
	}
	if k.unmanagedLocked() {
		// Nothing to refresh: the server refused the user's token, and only the user can replace it.
		var ev Event
		if k.grant.Registration == registrationStaticToken && token == k.tok.AccessToken {
			k.state, k.message = StateRevoked, "the server refused the static token"
			if !k.announced {
				k.announced = true
				ev = Event{Kind: EventRevoked, Trigger: "proxy-401", Outcome: "refused", Message: k.message}
			}
		}
		err := k.stateErrLocked()
		k.mu.Unlock()
		if ev.Kind != "" {
			k.emit(ev)
		}
		return err
	}
	now := k.cfg.Clock.Now()
	switch {
	case token != k.tok.AccessToken && k.tok.Valid(now, 0):
		k.mu.Unlock()
		return nil // someone already refreshed: the caller retries with the new token
	case k.state == StateNeedsSignIn || k.state == StateRevoked || k.state == StateDisabled:
		err := k.stateErrLocked()
		k.mu.Unlock()
		return err
	case k.state == StateDegraded && now.Before(k.next):
		// A retry is scheduled (backoff, Retry-After): a 401 on the expiring token must neither jump
		// ahead of it nor escalate it, or recovery after an outage waits minutes longer.
		err := k.stateErrLocked()
		k.mu.Unlock()
		return err
	}
	// A server that refuses every new token (a wrong audience, say) costs one refresh: the proxy's
	// replay with the new token is refused too and RefusedAfterRefresh marks the server revoked.
	f := k.startLocked("proxy-401")
	k.mu.Unlock()
	return wait(ctx, f)
}

func wait(ctx context.Context, f *flight) error {
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stateErrLocked is the error Token returns in a state that needs the user.
func (k *Keeper) stateErrLocked() error {
	switch k.state {
	case StateDisabled:
		return fmt.Errorf("%s is disabled", k.cfg.Name)
	case StateDegraded:
		return fmt.Errorf("%s: the token expired and the authorization server could not be reached (retrying at %s): %w",
			k.cfg.Name, k.next.Format(time.TimeOnly), k.lastErr)
	case StateRevoked:
		return fmt.Errorf("%s: the server revoked access: %w", k.cfg.Name, ErrNeedsSignIn)
	}
	return fmt.Errorf("%s: %w", k.cfg.Name, ErrNeedsSignIn)
}
