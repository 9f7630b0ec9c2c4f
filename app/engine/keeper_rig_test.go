package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
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
	landing atomic.Bool                   // with failing: Put stores the record, then fails (etcd's timeout)
	hold    atomic.Pointer[chan struct{}] // when set, Put waits for the channel to close
	// Fleet rigs only:
	cas    atomic.Bool               // Put compares Revision with the stored one, as the fleet's store does
	landed atomic.Pointer[chan bool] // when set, Put stores the record, then waits: true succeeds, false times out
	mu     sync.Mutex
	puts   []keychain.Record // every record stored, in order
}

func (s *flakyStore) Put(name string, r keychain.Record) (keychain.Record, error) {
	if h := s.hold.Load(); h != nil {
		<-*h
	}
	timedOut := fmt.Errorf("fleet: write %s: %w (etcdserver: request timed out)", name, keychain.ErrUnavailable)
	if s.failing.Load() && !s.landing.Load() {
		return keychain.Record{}, timedOut
	}
	s.mu.Lock()
	if s.cas.Load() {
		cur, _ := s.MemoryStore.Get(name)
		if cur.Revision != r.Revision {
			s.mu.Unlock()
			return keychain.Record{}, fmt.Errorf("write %s: %w: read at revision %d, stored is %d", name, keychain.ErrConflict, r.Revision, cur.Revision)
		}
	}
	out, err := s.MemoryStore.Put(name, r)
	if err == nil {
		s.puts = append(s.puts, out)
	}
	s.mu.Unlock()
	if l := s.landed.Load(); l != nil && err == nil {
		if !<-*l {
			return keychain.Record{}, timedOut
		}
	}
	if s.failing.Load() {
		return keychain.Record{}, timedOut // landed all the same
	}
	return out, err
}

// history lists every record stored as refresh token and whether it carried a refresh start.
func (s *flakyStore) history() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.puts {
		h := r.RefreshToken
		if !r.RefreshStarted.IsZero() {
			h += "+start"
		}
		out = append(out, h)
	}
	return out
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
// started; the fake AS issues tokens of the given lifetime and accepts tok's refresh token. Each
// tweak may change the rig and the keeper's config before the keeper is built; keeper returns it.
func newRigWith(t *testing.T, life time.Duration, clock Clock, tok oauth.Token, g oauth.Grant, started time.Time,
	tweaks ...func(r *rig, cfg *KeeperConfig, keeper func() *Keeper)) *rig {
	t.Helper()
	r := &rig{as: &fakeAS{life: life, clock: clock, current: tok.RefreshToken}, ev: &events{}}
	r.store = &flakyStore{MemoryStore: keychain.NewMemoryStore(time.Now)}
	var k *Keeper
	r.busy = NewBusy(clock, func(bool) {
		if k != nil {
			k.Resume(0)
		}
	})
	cfg := KeeperConfig{Name: "demo", Clock: clock, Store: r.store, Auth: r.as, Busy: r.busy,
		Emit: r.ev.add, Rand: func() float64 { return 0.5 }}
	for _, tw := range tweaks {
		tw(r, &cfg, func() *Keeper { return k })
	}
	k, err := NewKeeper(cfg, tok, g, clock.Now())
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
