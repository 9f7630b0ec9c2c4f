package engine

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// leadGate is a FleetGate whose election is set by the test; asks are counted, never answered.
type leadGate struct {
	leading atomic.Bool
	asks    atomic.Int32
}

func (g *leadGate) Leading(string) bool              { return g.leading.Load() }
func (g *leadGate) Ask(string, string, string) error { g.asks.Add(1); return nil }

// newFleetRig starts a keeper of a fleet instance over the rig's store, leading or not, holding a
// fresh one-hour pair; the fake AS accepts its refresh token.
func newFleetRig(t *testing.T, leading bool) (*rig, *leadGate) {
	t.Helper()
	clock := SystemClock{}
	tok := oauth.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: clock.Now().Add(time.Hour)}
	r := &rig{as: &fakeAS{life: time.Hour, clock: clock, current: tok.RefreshToken}, ev: &events{}}
	r.store = &flakyStore{MemoryStore: keychain.NewMemoryStore(time.Now)}
	gate := &leadGate{}
	gate.leading.Store(leading)
	r.busy = NewBusy(clock, func(bool) {})
	k, err := NewKeeper(KeeperConfig{Name: "demo", Clock: clock, Store: r.store, Auth: r.as, Busy: r.busy,
		Emit: r.ev.add, Rand: func() float64 { return 0.5 }, Fleet: gate}, tok, oauth.Grant{Resource: "https://mcp.example/mcp"}, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	k.Start()
	t.Cleanup(k.Close)
	r.k = k
	return r, gate
}

// storedOf is what the engine hands a keeper for rec (see Engine.fromRecord).
func storedOf(rec keychain.Record) stored {
	return stored{tok: tokenOf(rec), grant: grantOf(rec.Binding), issued: rec.Written, refreshStarted: rec.RefreshStarted}
}

// TestFleetRefresherWithdrawsAStartThatLandedAfterItsWriteFailed: etcd answers "request timed out" when
// it loses its quorum, and the write may be committed all the same. The refresher then holds back the
// refresh (the write failed), but the store holds its start, which every other instance takes for a
// refresh whose answer was lost. When the start reaches it through the watch, the refresher — which
// knows it never sent that refresh — writes the same pair without it, and refreshes as usual later;
// the refresh token is never sent twice.
func TestFleetRefresherWithdrawsAStartThatLandedAfterItsWriteFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := newFleetRig(t, true)
		r.store.failing.Store(true)
		r.store.landing.Store(true)
		time.Sleep(48 * time.Minute) // the planned refresh: its start is written, lands, and "fails"
		synctest.Wait()
		if n := r.as.Calls(); n != 0 {
			t.Fatalf("%d refresh requests after the write of the start reported a failure", n)
		}
		rec, err := r.store.Get("demo")
		if err != nil || rec.RefreshStarted.IsZero() {
			t.Fatalf("the store holds %+v, %v; want the start that landed", rec.RefreshStarted, err)
		}
		r.store.failing.Store(false)
		r.store.landing.Store(false)
		r.k.Observe(storedOf(rec), rec.Revision) // the watch delivers it
		synctest.Wait()
		after, err := r.store.Get("demo")
		if err != nil || !after.RefreshStarted.IsZero() || after.RefreshToken != "rt-0" || after.Revision <= rec.Revision {
			t.Fatalf("after the watch delivered the start: %q started %v (revision %d, was %d), %v; want rt-0 written again without it",
				after.RefreshToken, after.RefreshStarted, after.Revision, rec.Revision, err)
		}
		time.Sleep(fleetStoreRetry + time.Second) // the refresh's own retry
		synctest.Wait()
		if n := r.as.Calls(); n != 1 || r.as.Reused() {
			t.Fatalf("after the store answers again: %d refresh requests, reuse %v; want one", n, r.as.Reused())
		}
		if rec, _ := r.store.Get("demo"); rec.RefreshToken != "rt-1" || !rec.RefreshStarted.IsZero() {
			t.Errorf("the store holds %q started %v; want rt-1 with no refresh in flight", rec.RefreshToken, rec.RefreshStarted)
		}
	})
}

// TestFleetRefresherDoesNotWithdrawAStartItSent: the same start delivered while its write succeeds is
// a refresh in flight, never withdrawn (that would let a crash replay its refresh token).
func TestFleetRefresherDoesNotWithdrawAStartItSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := newFleetRig(t, true)
		gate := r.as.Gate()
		time.Sleep(48 * time.Minute)
		synctest.Wait() // the refresh is at the AS
		rec, err := r.store.Get("demo")
		if err != nil || rec.RefreshStarted.IsZero() {
			t.Fatalf("while the refresh is at the AS the store holds %+v, %v; want its start", rec.RefreshStarted, err)
		}
		r.k.Observe(storedOf(rec), rec.Revision)
		synctest.Wait()
		if now, _ := r.store.Get("demo"); now.Revision != rec.Revision || now.RefreshStarted.IsZero() {
			t.Fatalf("the start of a refresh in flight was rewritten: revision %d → %d, started %v", rec.Revision, now.Revision, now.RefreshStarted)
		}
		gate <- 1
		synctest.Wait()
		if rec, _ := r.store.Get("demo"); rec.RefreshToken != "rt-1" || !rec.RefreshStarted.IsZero() {
			t.Errorf("after the answer the store holds %q started %v; want rt-1", rec.RefreshToken, rec.RefreshStarted)
		}
	})
}

// TestNewRefresherWaitsForAnUnansweredStartToBeWithdrawnBeforeAskingForASignIn: an instance that takes
// the grant over finds another instance's start with no answer. It never refreshes that refresh token,
// and it asks the user to sign in — but only after fleetStartGrace, and not at all when the start's
// writer withdraws it meanwhile: then it refreshes as usual.
func TestNewRefresherWaitsForAnUnansweredStartToBeWithdrawnBeforeAskingForASignIn(t *testing.T) {
	for _, tt := range []struct {
		name     string
		withdraw bool
	}{
		{"withdrawn within the grace: no sign-in asked, the refresh runs", true},
		{"never withdrawn: one sign-in asked after the grace, no refresh", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, gate := newFleetRig(t, false)
				// The other instance's start, as the store holds it: the same pair, a refresh start.
				other := ToRecord(oauth.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)},
					oauth.Grant{Resource: "https://mcp.example/mcp"})
				other.RefreshStarted = time.Now()
				rec, err := r.store.Put("demo", other)
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(59*time.Minute + 50*time.Second) // past the hard deadline: a refresh is overdue
				gate.leading.Store(true)
				r.k.Lead(storedOf(rec), rec.Revision)
				synctest.Wait()
				if st := r.k.Status(); st.State != StateNeedsSignIn || st.Cause != CauseRefreshInterrupted {
					t.Fatalf("the new refresher: %s/%s; want needs-sign-in, refresh interrupted", st.State, st.Cause)
				}
				time.Sleep(fleetStartGrace / 2)
				synctest.Wait()
				if n := r.ev.count(EventNeedsSignIn); n != 0 {
					t.Fatalf("%d needs-sign-in announced within the grace", n)
				}
				if tt.withdraw {
					rec.RefreshStarted = time.Time{}
					if rec, err = r.store.Put("demo", rec); err != nil {
						t.Fatal(err)
					}
					r.k.Observe(storedOf(rec), rec.Revision)
				}
				time.Sleep(fleetStartGrace)
				synctest.Wait()
				switch calls, signIns := r.as.Calls(), r.ev.count(EventNeedsSignIn); {
				case tt.withdraw && (calls != 1 || signIns != 0 || r.ev.count(EventRecovered) != 1):
					t.Errorf("after the withdrawal: %d refreshes, %d sign-ins asked, events %v; want one refresh, none asked, recovered",
						calls, signIns, r.ev.kinds())
				case !tt.withdraw && (calls != 0 || signIns != 1):
					t.Errorf("without a withdrawal: %d refreshes, %d sign-ins asked; want none and one", calls, signIns)
				}
				if r.as.Reused() {
					t.Error("a refresh token was sent twice")
				}
			})
		})
	}
}
