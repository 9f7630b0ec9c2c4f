package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// fakeAS is a one-method Refresher: it rotates refresh tokens, rejects reuse as oidc-provider does,
// and can be told to fail. The integration tests use the real AS; this one pins the timing.
type fakeAS struct {
	life  time.Duration
	clock Clock // dates the tokens, as the engine's clock would

	mu      sync.Mutex
	calls   int
	current string   // the only refresh token that works
	fail    []error  // returned by the next calls, in order
	lose    []error  // returned by the next successful calls instead of their answer, in order
	gate    chan int // when set, each call waits for a value before answering
	reused  bool
}

func (f *fakeAS) Refresh(ctx context.Context, g oauth.Grant, rt string) (oauth.Token, oauth.Grant, error) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.fail) > 0 {
		err := f.fail[0]
		f.fail = f.fail[1:]
		if errors.Is(err, oauth.ErrReauthRequired) {
			f.current = "" // the grant is dead, as at a real AS
		}
		return oauth.Token{}, g, err
	}
	if g.GrantType == oauth.GrantClientCredentials {
		// A machine identity asks again with its credentials: no refresh token in, none out.
		return oauth.Token{AccessToken: fmt.Sprintf("at-%d", n), TokenType: "Bearer", Expiry: f.clock.Now().Add(f.life)}, g, nil
	}
	if rt != f.current {
		f.reused = true
		return oauth.Token{}, g, &oauth.Error{Op: "refresh", Code: "invalid_grant", Status: 400, Class: oauth.ClassReauth}
	}
	f.current = fmt.Sprintf("rt-%d", n)
	if len(f.lose) > 0 {
		// The AS rotated, and its answer never arrived.
		err := f.lose[0]
		f.lose = f.lose[1:]
		return oauth.Token{}, g, err
	}
	return oauth.Token{AccessToken: fmt.Sprintf("at-%d", n), RefreshToken: f.current, TokenType: "Bearer",
		Expiry: f.clock.Now().Add(f.life), Scopes: []string{"mcp:read"}}, g, nil
}

// Fail makes the next calls return errs, in order.
func (f *fakeAS) Fail(errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = append(f.fail, errs...)
}

// LoseAnswers makes the next successful calls rotate the refresh token as usual but return errs, in
// order, instead of their answer: a timeout, a connection reset, a gateway's 504 after the AS answered.
func (f *fakeAS) LoseAnswers(errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lose = append(f.lose, errs...)
}

// Grant installs rt as the one working refresh token (a new sign-in).
func (f *fakeAS) Grant(rt string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.current = rt
}

// Gate makes every call wait for a value on the returned channel.
func (f *fakeAS) Gate() chan int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = make(chan int)
	return f.gate
}

func (f *fakeAS) Reused() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reused
}

func (f *fakeAS) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// flakyStore is a one-method CredentialStore over the in-memory store that fails while told to.
type flakyStore struct {
	*keychain.MemoryStore
	failing atomic.Bool
	hold    atomic.Pointer[chan struct{}] // when set, Put waits for the channel to close
}

func (s *flakyStore) Put(name string, r keychain.Record) (keychain.Record, error) {
	if h := s.hold.Load(); h != nil {
		<-*h
	}
	if s.failing.Load() {
		return keychain.Record{}, fmt.Errorf("keyring: %w", keychain.ErrUnavailable)
	}
	return s.MemoryStore.Put(name, r)
}

// events collects emitted events.
type events struct {
	mu sync.Mutex
	l  []Event
}

func (e *events) add(ev Event) { e.mu.Lock(); e.l = append(e.l, ev); e.mu.Unlock() }

func (e *events) kinds() []EventKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []EventKind
	for _, ev := range e.l {
		out = append(out, ev.Kind)
	}
	return out
}

func (e *events) count(k EventKind) int {
	n := 0
	for _, got := range e.kinds() {
		if got == k {
			n++
		}
	}
	return n
}

type rig struct {
	k     *Keeper
	as    *fakeAS
	store *flakyStore
	busy  *Busy
	ev    *events
}

// newRig starts a keeper holding a fresh token of the given lifetime, with jitter fixed at zero.
func newRig(t *testing.T, life time.Duration, clock Clock) *rig {
	t.Helper()
	tok := oauth.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: clock.Now().Add(life)}
	return newRigWith(t, life, clock, tok, oauth.Grant{Resource: "https://mcp.example/mcp"}, time.Time{})
}

// newRigWith starts a keeper holding tok under g, loaded as from a record whose RefreshStarted is
// started; the fake AS issues tokens of the given lifetime and accepts tok's refresh token.
func newRigWith(t *testing.T, life time.Duration, clock Clock, tok oauth.Token, g oauth.Grant, started time.Time) *rig {
	t.Helper()
	r := &rig{as: &fakeAS{life: life, clock: clock, current: tok.RefreshToken}, ev: &events{}}
	r.store = &flakyStore{MemoryStore: keychain.NewMemoryStore(time.Now)}
	var k *Keeper
	r.busy = NewBusy(clock, func(bool) {
		if k != nil {
			k.Resume(0)
		}
	})
	k, err := NewKeeper(KeeperConfig{Name: "demo", Clock: clock, Store: r.store, Auth: r.as, Busy: r.busy,
		Emit: r.ev.add, Rand: func() float64 { return 0.5 }}, tok, g, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !started.IsZero() {
		k.SetRefreshStarted(started)
	}
	k.Start()
	t.Cleanup(k.Close)
	r.k = k
	return r
}

func TestKeeperRefreshesAtPlannedTimeAndPersistsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		time.Sleep(48*time.Minute - time.Second)
		synctest.Wait()
		if n := r.as.Calls(); n != 0 {
			t.Fatalf("%d refreshes before 80%% of the lifetime", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := r.as.Calls(); n != 1 {
			t.Fatalf("%d refreshes at 80%% of the lifetime, want 1", n)
		}
		rec, err := r.store.Get("demo")
		if err != nil || rec.AccessToken != "at-1" || rec.RefreshToken != "rt-1" {
			t.Fatalf("stored %v, %v; want the rotated pair", rec, err)
		}
		tok, err := r.k.Token(context.Background())
		if err != nil || tok != "at-1" {
			t.Fatalf("Token = %q, %v", tok, err)
		}
		st := r.k.Status()
		if st.State != StateFresh || st.Last.Trigger != "schedule" || st.Next.Sub(st.Last.At) != 48*time.Minute {
			t.Errorf("status %+v", st)
		}
	})
}

func TestKeeperFiftyConcurrentForceRefreshesMakeOneRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		gate := r.as.Gate()
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for range 50 {
			wg.Go(func() { errs <- r.k.ForceRefresh(context.Background(), "forced") })
		}
		synctest.Wait() // all fifty are waiting on the one request
		gate <- 1
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := r.as.Calls(); n != 1 {
			t.Errorf("%d token requests for 50 concurrent ForceRefresh calls, want 1", n)
		}
		if r.as.Reused() {
			t.Error("a rotated refresh token was replayed")
		}
	})
}

func TestKeeperNewTokenServesFromMemoryWhenTheSaveFailsAndIsSavedLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 20*time.Second, SystemClock{})
		r.store.failing.Store(true) // the save fails: the pair must still serve, with a warning
		// The keychain cannot record the refresh's start either, so the refresh waits (degraded) until
		// its hard deadline, 2 s before expiry, and then runs anyway: without it the server would stop.
		time.Sleep(18 * time.Second)
		synctest.Wait()
		tok, err := r.k.Token(context.Background())
		if err != nil || tok != "at-1" {
			t.Fatalf("Token = %q, %v; want the new pair from memory", tok, err)
		}
		if r.ev.count(EventWarning) != 1 || r.ev.count(EventDegraded) != 1 {
			t.Errorf("events %v: want one degraded (start not recorded) and one warning for the failed save", r.ev.kinds())
		}
		if _, err := r.store.Get("demo"); !errors.Is(err, keychain.ErrNotFound) {
			t.Fatalf("store has a record although every save failed: %v", err)
		}
		r.store.failing.Store(false)
		time.Sleep(6 * time.Second) // the save is retried after the backoff
		synctest.Wait()
		rec, err := r.store.Get("demo")
		if err != nil || rec.RefreshToken != "rt-1" {
			t.Fatalf("after recovery the store holds %v, %v; want rt-1", rec, err)
		}
	})
}

func TestKeeperDefersWhileBusyAndRefreshesWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		r.busy.Start("turn", "agent", time.Hour)
		time.Sleep(49 * time.Minute)
		synctest.Wait()
		if n := r.as.Calls(); n != 0 {
			t.Fatalf("refreshed while busy before the deadline (%d)", n)
		}
		if st := r.k.Status(); st.State != StateDeferred || !st.Deferred || st.NextTrigger != "deadline" {
			t.Fatalf("status %+v, want deferred until the deadline", st)
		}
		r.busy.End("turn")
		synctest.Wait()
		if n := r.as.Calls(); n != 1 {
			t.Fatalf("%d refreshes after the last lease ended, want 1", n)
		}
		if got := r.k.Status().Last.Trigger; got != "idle" {
			t.Errorf("trigger %q, want idle", got)
		}
		if r.ev.count(EventDeferred) != 1 || r.ev.count(EventRefreshed) != 1 {
			t.Errorf("events %v", r.ev.kinds())
		}
	})
}

func TestKeeperHardDeadlineRefreshesEvenWhileBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		r.busy.Start("long-turn", "agent", 10*time.Hour)
		start := time.Now()
		time.Sleep(58*time.Minute - time.Second)
		synctest.Wait()
		if n := r.as.Calls(); n != 0 {
			t.Fatalf("refreshed before the hard deadline while busy (%d)", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := r.as.Calls(); n != 1 {
			t.Fatalf("%d refreshes at the hard deadline, want 1", n)
		}
		if got := r.k.Status().Last; got.Trigger != "deadline" || got.At.Sub(start) != 58*time.Minute {
			t.Errorf("last refresh %+v, want the deadline at +58m", got)
		}
		if r.ev.count(EventDeadlineRefresh) != 1 {
			t.Errorf("events %v, want a deadline_refresh", r.ev.kinds())
		}
		// Over a long busy period every token is replaced before it expires.
		for range 10 {
			time.Sleep(time.Hour)
			synctest.Wait()
			if _, err := r.k.Token(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if n := r.as.Calls(); n < 10 {
			t.Errorf("%d refreshes over 10 busy hours", n)
		}
	})
}

func TestKeeperBacksOffOnTransientErrorsHonouringRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		r.as.Fail(
			&oauth.Error{Op: "refresh", Status: 429, Class: oauth.ClassTransient, RetryAfter: 90 * time.Second},
			&oauth.Error{Op: "refresh", Status: 503, Class: oauth.ClassTransient},
			&oauth.Error{Op: "refresh", Status: 503, Class: oauth.ClassTransient})
		time.Sleep(48 * time.Minute)
		synctest.Wait()
		if n := r.as.Calls(); n != 1 {
			t.Fatalf("%d calls at the planned time, want 1", n)
		}
		// Retries: Retry-After 90 s beats the first backoff (5 s); the next failures wait 10 s, then 20 s.
		at := time.Now()
		for i, gap := range []time.Duration{90 * time.Second, 10 * time.Second, 20 * time.Second} {
			at = at.Add(gap)
			time.Sleep(time.Until(at) - time.Millisecond)
			synctest.Wait()
			if n := r.as.Calls(); n != i+1 {
				t.Fatalf("retry %d came early: %d calls 1ms before it was due", i+1, n)
			}
			time.Sleep(time.Millisecond)
			synctest.Wait()
			if n := r.as.Calls(); n != i+2 {
				t.Fatalf("retry %d: %d calls, want %d", i+1, n, i+2)
			}
		}
		if st := r.k.Status(); st.State != StateFresh {
			t.Errorf("state %s after recovery", st.State)
		}
		if r.ev.count(EventDegraded) != 1 || r.ev.count(EventRecovered) != 1 {
			t.Errorf("events %v: want one degraded and one recovered", r.ev.kinds())
		}
	})
}

func TestKeeperReauthNeededStopsRetryingAndAnnouncesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		r.as.Fail(&oauth.Error{Op: "refresh", Code: "invalid_grant", Status: 400, Class: oauth.ClassReauth})
		time.Sleep(48 * time.Minute)
		synctest.Wait()
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		if n := r.as.Calls(); n != 1 {
			t.Errorf("%d refresh attempts after invalid_grant, want 1 (no retry loop)", n)
		}
		if _, err := r.k.Token(context.Background()); !errors.Is(err, ErrNeedsSignIn) {
			t.Errorf("Token after the grant died: %v, want ErrNeedsSignIn", err)
		}
		if err := r.k.ForceRefresh(context.Background(), "user"); err == nil {
			t.Error("a forced refresh of a dead grant succeeded")
		}
		if n := r.ev.count(EventNeedsSignIn); n != 1 {
			t.Errorf("%d needs_sign_in events, want exactly 1 per episode", n)
		}
		if r.as.Reused() {
			t.Error("the dead grant's refresh token was replayed")
		}
		// Signing in ends the episode and resumes the schedule.
		r.as.Grant("rt-new")
		if err := r.k.Adopt(oauth.Token{AccessToken: "at-new", RefreshToken: "rt-new", Expiry: time.Now().Add(time.Hour)}, r.k.Grant()); err != nil {
			t.Fatal(err)
		}
		if tok, err := r.k.Token(context.Background()); err != nil || tok != "at-new" {
			t.Fatalf("Token after sign-in = %q, %v", tok, err)
		}
		time.Sleep(48 * time.Minute)
		synctest.Wait()
		if st := r.k.Status(); st.State != StateFresh || st.Last.Trigger != "schedule" {
			t.Errorf("after sign-in the schedule did not resume: %+v", st)
		}
	})
}

func TestKeeperRejectedTokenForcesOneRefreshThenRevoked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		time.Sleep(time.Minute)
		if err := r.k.Rejected(context.Background(), "at-0"); err != nil {
			t.Fatal(err)
		}
		if n := r.as.Calls(); n != 1 {
			t.Fatalf("%d refreshes after a 401, want 1", n)
		}
		// A second 401 for the old token is stale: the keeper already moved on.
		if err := r.k.Rejected(context.Background(), "at-0"); err != nil || r.as.Calls() != 1 {
			t.Fatalf("stale rejection refreshed again: %v, %d calls", err, r.as.Calls())
		}
		r.as.Fail(&oauth.Error{Op: "refresh", Code: "invalid_grant", Status: 400, Class: oauth.ClassReauth})
		time.Sleep(time.Minute)
		if err := r.k.Rejected(context.Background(), "at-1"); err == nil {
			t.Fatal("rejection with a dead grant reported success")
		}
		if st := r.k.Status(); st.State != StateRevoked {
			t.Errorf("state %s, want revoked", st.State)
		}
		if r.ev.count(EventRevoked) != 1 {
			t.Errorf("events %v, want one revoked", r.ev.kinds())
		}
	})
}

func TestKeeperRefreshesOnWakeWhenTheTimerSleptThroughExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := &jumpClock{}
		r := newRig(t, time.Hour, clock)
		time.Sleep(10 * time.Minute)
		clock.Jump(2 * time.Hour) // the laptop slept through the planned refresh and the expiry
		r.k.Reevaluate(time.Second)
		time.Sleep(time.Second)
		synctest.Wait()
		if n := r.as.Calls(); n != 1 {
			t.Fatalf("%d refreshes on wake, want 1", n)
		}
		if got := r.k.Status().Last.Trigger; got != "wake" {
			t.Errorf("trigger %q, want wake", got)
		}
	})
}

func TestKeeperNewTokenIsNotHandedOutBeforeItIsPersisted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		hold := make(chan struct{})
		r.store.hold.Store(&hold)
		done := make(chan error, 1)
		go func() { done <- r.k.ForceRefresh(context.Background(), "user") }()
		synctest.Wait() // the refresh got its new pair and is blocked saving it
		if tok, _ := r.k.Token(context.Background()); tok != "at-0" {
			t.Fatalf("Token while the new pair is being saved = %q, want the old at-0", tok)
		}
		close(hold)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if tok, _ := r.k.Token(context.Background()); tok != "at-1" {
			t.Fatalf("Token after the save = %q, want at-1", tok)
		}
	})
}

func TestKeeperSignInDuringARefreshWinsOverTheLateRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		gate := r.as.Gate()
		go r.k.ForceRefresh(context.Background(), "user") //nolint:errcheck // its result is discarded
		synctest.Wait()                                   // the refresh is at the AS
		if err := r.k.Adopt(oauth.Token{AccessToken: "at-signin", RefreshToken: "rt-signin", Expiry: time.Now().Add(time.Hour)}, r.k.Grant()); err != nil {
			t.Fatal(err)
		}
		gate <- 1 // the old refresh completes after the sign-in
		synctest.Wait()
		if tok, _ := r.k.Token(context.Background()); tok != "at-signin" {
			t.Errorf("Token = %q: a late refresh overwrote the sign-in", tok)
		}
		rec, _ := r.store.Get("demo")
		if rec.RefreshToken != "rt-signin" {
			t.Errorf("keychain holds %q: a late refresh overwrote the sign-in", rec.RefreshToken)
		}
	})
}

func TestKeeperDoesNotRefreshAheadOfRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 10*time.Minute, SystemClock{})
		r.as.Fail(&oauth.Error{Op: "refresh", Status: 429, Class: oauth.ClassTransient, RetryAfter: time.Hour})
		time.Sleep(5 * time.Minute) // half-life: the refresh fails with Retry-After: 1h
		synctest.Wait()
		time.Sleep(6 * time.Minute) // the token has expired; the AS asked us to wait
		for range 20 {
			if _, err := r.k.Token(context.Background()); err == nil {
				t.Fatal("Token returned a token after expiry while backing off")
			}
		}
		if n := r.as.Calls(); n != 1 {
			t.Errorf("%d refresh requests while the AS asked to wait an hour, want 1", n)
		}
		if _, err := r.k.Token(context.Background()); !errors.Is(err, oauth.ErrTransient) {
			t.Errorf("error while backing off = %v, want it to wrap the transient failure", err)
		}
	})
}

func TestKeeperCloseWaitsForTheRefreshInFlightAndPersistsIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		gate := r.as.Gate()
		go r.k.ForceRefresh(context.Background(), "user") //nolint:errcheck
		synctest.Wait()
		closed := make(chan struct{})
		go func() { r.k.Close(); close(closed) }()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while a refresh was in flight")
		default:
		}
		gate <- 1
		<-closed
		if rec, err := r.store.Get("demo"); err != nil || rec.RefreshToken != "rt-1" {
			t.Fatalf("after Close the keychain holds %v, %v; want the rotated rt-1", rec, err)
		}
	})
}

func TestKeeperRefusedAfterRefreshMarksRevokedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, time.Hour, SystemClock{})
		if err := r.k.Rejected(context.Background(), "at-0"); err != nil {
			t.Fatal(err)
		}
		// The server refuses the new token too: the proxy reports it, and no further refresh happens.
		r.k.RefusedAfterRefresh("at-1")
		r.k.RefusedAfterRefresh("at-1")
		if err := r.k.Rejected(context.Background(), "at-1"); !errors.Is(err, ErrNeedsSignIn) {
			t.Fatalf("Rejected after the server refused a fresh token = %v, want ErrNeedsSignIn", err)
		}
		if n := r.as.Calls(); n != 1 {
			t.Errorf("%d refreshes for a server refusing every token, want 1", n)
		}
		if st := r.k.Status(); st.State != StateRevoked || r.ev.count(EventRevoked) != 1 {
			t.Errorf("state %s, events %v: want revoked, announced once", st.State, r.ev.kinds())
		}
	})
}

func TestKeeperRejectedWhileDegradedWaitsForTheScheduledRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 10*time.Minute, SystemClock{})
		r.as.Fail(refused(), refused()) // the AS is down: its port refuses connections
		time.Sleep(5 * time.Minute)     // half-life
		synctest.Wait()
		// Agents' calls meet 401s on the expiring token: none of them may jump ahead of the retry.
		for range 10 {
			if err := r.k.Rejected(context.Background(), "at-0"); !errors.Is(err, oauth.ErrTransient) {
				t.Fatalf("Rejected while backing off = %v, want the transient failure", err)
			}
		}
		if n := r.as.Calls(); n != 1 {
			t.Fatalf("%d refreshes, want 1: 401s jumped ahead of the scheduled retry", n)
		}
		time.Sleep(5 * time.Second) // the first retry (5 s) fails too; the next waits 10 s, not more
		synctest.Wait()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := r.as.Calls(); n != 3 {
			t.Errorf("%d refreshes after 5 s + 10 s of backoff, want 3", n)
		}
		if st := r.k.Status(); st.State != StateFresh {
			t.Errorf("state %s after the AS came back", st.State)
		}
	})
}
