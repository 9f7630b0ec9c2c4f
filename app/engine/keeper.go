package engine

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

// Refresher is the part of the OAuth client a keeper needs: one refresh-token grant (for a
// client_credentials grant, a new token asked for with the client's credentials; refreshToken is then "").
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
	// Fleet, when set, makes the keeper one of several instances sharing the grant through Store (see
	// keeper_fleet.go): it refreshes only while Fleet says it leads, and asks the leader otherwise.
	// Nil: this process alone owns the grant.
	Fleet FleetGate
	// OnConflict, if set, is called when Store refused a write because the record changed meanwhile
	// (keychain.ErrConflict), or — in a fleet — could not tell whether a write landed
	// (keychain.ErrUnavailable, a timeout): the engine then reads the record again, retrying until the
	// store answers, and hands it to Observe. Called without k.mu.
	OnConflict func()
}

// LastRefresh records the outcome of the latest refresh attempt.
type LastRefresh struct {
	At      time.Time `json:"at,omitzero"`
	Trigger Trigger   `json:"trigger,omitempty"`
	Outcome Outcome   `json:"outcome,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// ServerStatus is one server's line in the engine's snapshot.
type ServerStatus struct {
	Name   string    `json:"name"`
	URL    string    `json:"url"`
	State  State     `json:"state"`
	Cause  Cause     `json:"cause,omitempty"` // why it is in State; for code, never shown
	Expiry time.Time `json:"expiry,omitzero"`
	// NoExpiry is set for a token that has no expiry (zero Expiry): it serves until the server refuses
	// it (GitHub OAuth apps, API keys pasted without a date).
	NoExpiry    bool        `json:"no_expiry,omitempty"`
	Scopes      []string    `json:"scopes,omitempty"`
	Last        LastRefresh `json:"last_refresh"`
	Next        time.Time   `json:"next_refresh,omitzero"`
	NextTrigger Trigger     `json:"next_trigger,omitempty"`
	Deferred    bool        `json:"deferred"`
	Message     string      `json:"message,omitempty"`
	// Auth is how the server is authenticated: "oauth" (refreshed by authkeeper), "static-token" (a
	// token the user pasted) or "no-auth". Only "oauth" servers can be refreshed or signed in again.
	Auth string `json:"auth"`
	// GrantType is how an "oauth" server's tokens are obtained: "" (a person signs in) or
	// "client_credentials" (a machine identity; no browser).
	GrantType oauth.GrantType `json:"grant_type,omitempty"`
	// Quirks are the deviations from the MCP authorization spec tolerated for the grant, and Warnings
	// say each in a sentence (naming both issuers for a mismatch).
	Quirks   []oauth.Quirk `json:"quirks,omitempty"`
	Warnings []Warning     `json:"warnings,omitempty"`
	// Unsaved is set while the newest token pair is only in memory because the keychain refused the
	// save (it is retried); an exit now would lose it.
	Unsaved bool `json:"unsaved,omitempty"`
	// Fleet is the server's place in the fleet, when the credentials are shared (see FleetMode).
	Fleet *FleetServer `json:"fleet,omitempty"`
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
	cause     Cause // why the state is what it is, for code to branch on; message has the words
	plan      Plan
	next      time.Time // when the timer fires
	trigger   Trigger   // why it fires: schedule, deadline, retry, idle or wake
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
	// marker is the RefreshStarted the keychain holds (or is to hold) with the current pair: set while
	// a refresh whose start was recorded is in flight, or loaded from a record a crashed process left.
	// Every save of the current pair carries it (see recordLocked).
	marker time.Time
	// challenge is the WWW-Authenticate of the 401 that made a server added without auth an OAuth
	// server (see AuthRequired and keychain.Record.Challenge); every save carries it.
	challenge []string
	// unreadable is why the stored credentials could not be read (a locked or absent keychain); nil
	// once they were. While set, nothing is refreshed — the refresh token is in the keychain — and
	// Token fails with ErrCredentialsUnreadable until Restore installs the record.
	unreadable error
	// epoch is bumped whenever the token pair is replaced or dropped other than by a refresh (sign-in,
	// logout, removal). A refresh that started in an older epoch is stale: its result is discarded,
	// never persisted, so it cannot overwrite what the user just did.
	epoch uint64
	// unsent are the RefreshStarted values this keeper tried to record and never sent the refresh of
	// (the write failed, so the refresh was not sent, yet a timed-out write may still land); sent is the
	// last one whose write succeeded, and whose refresh therefore went out. In a fleet, a marker the store
	// holds that is not in unsent was written by a refresh that may have spent the refresh token: another
	// instance's, or this one's whose answer was not saved (see foreignMarkerLocked, Observe).
	unsent []time.Time
	sent   time.Time
	// rev is the store's revision of the record the current pair came from or was last saved as; a
	// fleet's store refuses a write based on an older one (see put).
	rev uint64

	// saveMu orders every write of this server's record, so the keychain always ends up with the
	// newest pair: a slow save of an older pair can never land after a newer one.
	saveMu sync.Mutex
}

// flight is one refresh in progress; waiters block on done.
type flight struct {
	done  chan struct{}
	err   error
	epoch uint64
	ask   bool // a follower's wait for the fleet's refresher (askLocked), not a refresh
}

// errClosed is returned by a keeper whose server was removed or whose engine stopped.
var errClosed = errors.New("the server was removed or authkeeper is shutting down")

// ErrNothingToRefresh: the grant has no refresh token (and is not a client_credentials grant); its
// token serves until the server refuses it, and then a sign-in replaces it.
var ErrNothingToRefresh = errors.New("the token has no refresh token: it is used until the server refuses it, then you sign in again")

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

// Start plans the next refresh (or runs it at once when it is already due), and announces a
// needs-sign-in the stored record left it in (an interrupted refresh).
func (k *Keeper) Start() {
	k.mu.Lock()
	k.planLocked()
	ev := k.announceLoadedLocked()
	k.mu.Unlock()
	if ev.Kind != "" {
		k.emit(ev)
	}
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
		// Bounded by the injected clock, like every other wait of the keeper's.
		expired := make(chan struct{})
		t := k.cfg.Clock.AfterFunc(k.cfg.RefreshTimeout+5*time.Second, func() { close(expired) })
		select {
		case <-f.done:
		case <-expired:
		}
		t.Stop()
	}
	k.saveMu.Lock()
	defer k.saveMu.Unlock()
	k.mu.Lock()
	unsaved, rec := k.unsaved, k.recordLocked()
	k.mu.Unlock()
	if unsaved {
		_, err := k.put(rec)
		if err == nil {
			k.mu.Lock()
			k.unsaved = false
			k.mu.Unlock()
			return
		}
		k.emit(Event{Kind: EventWarning, Trigger: TriggerShutdown, Outcome: OutcomeError,
			Message: "the newest token could not be saved before exit; the next start will ask for a sign-in: " + err.Error()})
	}
}
