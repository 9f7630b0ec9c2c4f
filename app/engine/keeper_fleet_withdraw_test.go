package engine

import (
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// leadGate is a FleetGate whose election is set by the test; asks are never answered.
type leadGate struct{ leading atomic.Bool }

func (g *leadGate) Leading(string) bool              { return g.leading.Load() }
func (g *leadGate) Ask(string, string, string) error { return nil }

// newFleetRig starts a keeper of a fleet instance over the rig's store, leading or not, holding a
// fresh one-hour pair; the fake AS accepts its refresh token. The store compares revisions, as the
// fleet's does, and the keeper's OnConflict reads the record back into Observe, as the engine's does.
func newFleetRig(t *testing.T, leading bool) (*rig, *leadGate) {
	t.Helper()
	gate := &leadGate{}
	gate.leading.Store(leading)
	tok := oauth.Token{AccessToken: "at-0", RefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour)}
	r := newRigWith(t, time.Hour, SystemClock{}, tok, oauth.Grant{Resource: "https://mcp.example/mcp"}, time.Time{},
		func(r *rig, cfg *KeeperConfig, keeper func() *Keeper) {
			r.store.cas.Store(true)
			cfg.Fleet = gate
			cfg.OnConflict = func() {
				go func() {
					if rec, err := r.store.Get("demo"); err == nil {
						keeper().Observe(storedOf(rec), rec.Revision)
					}
				}()
			}
		})
	return r, gate
}

// storedOf is what the engine hands a keeper for rec (see Engine.fromRecord).
func storedOf(rec keychain.Record) stored {
	return stored{tok: tokenOf(rec), grant: grantOf(rec.Binding), issued: rec.Written, refreshStarted: rec.RefreshStarted}
}

// TestFleetRefresherWithdrawsAStartThatLandedAfterItsWriteFailed: etcd answers "request timed out" when
// it loses its quorum, and the write may be committed all the same. The refresher then holds back the
// refresh (the write failed), but the store holds its start, which every other instance takes for a
// refresh whose answer was lost. The refresher reads the record back after the timeout and, finding
// its own start there — a refresh it knows it never sent — writes the same pair without it at once.
// When the store answers again it refreshes as usual; the refresh token is never sent twice.
func TestFleetRefresherWithdrawsAStartThatLandedAfterItsWriteFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, _ := newFleetRig(t, true)
		r.store.failing.Store(true)
		r.store.landing.Store(true) // every write lands, and reports a timeout
		time.Sleep(48 * time.Minute)
		synctest.Wait()
		if n := r.as.Calls(); n != 0 {
			t.Fatalf("%d refresh requests after the write of the start reported a failure", n)
		}
		if h := r.store.history(); len(h) < 2 || h[0] != "rt-0+start" || h[1] != "rt-0" {
			t.Fatalf("writes %v; want the start that landed, then the same pair without it", h)
		}
		r.store.failing.Store(false)
		r.store.landing.Store(false)
		time.Sleep(fleetStoreRetry + time.Second) // the refresh's own retry
		synctest.Wait()
		if n := r.as.Calls(); n != 1 || r.as.Reused() {
			t.Fatalf("after the store answers again: %d refresh requests, reuse %v; want one", n, r.as.Reused())
		}
		if rec, _ := r.store.Get("demo"); rec.RefreshToken != "rt-1" || !rec.RefreshStarted.IsZero() {
			t.Errorf("the store holds %q started %v; want rt-1 with no refresh in flight (writes %v)", rec.RefreshToken,
				rec.RefreshStarted, r.store.history())
		}
	})
}

// TestFleetRefresherWithdrawsOnlyAStartItNeverSent: a re-read can deliver the refresher's start while the
// write of it has landed but not yet returned. If the write then succeeds, the refresh goes out and the
// start stays until its answer replaces it (a withdrawal then would let a crash replay the refresh
// token). If the write then fails, the start is withdrawn and the refresh runs on the retry.
func TestFleetRefresherWithdrawsOnlyAStartItNeverSent(t *testing.T) {
	for _, tt := range []struct {
		name    string
		success bool
		writes  []string
	}{
		{"the write succeeds: the refresh is sent, the start stays until its answer", true, []string{"rt-0+start", "rt-1"}},
		{"the write times out: the start is withdrawn, the retry refreshes", false, []string{"rt-0+start", "rt-0", "rt-0+start", "rt-1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r, _ := newFleetRig(t, true)
				landed := make(chan bool)
				r.store.landed.Store(&landed)
				gate := r.as.Gate()
				time.Sleep(48 * time.Minute) // the start's write lands and waits to return
				synctest.Wait()
				rec, err := r.store.Get("demo")
				if err != nil || rec.RefreshStarted.IsZero() {
					t.Fatalf("the store holds %+v, %v; want the start", rec.RefreshStarted, err)
				}
				// A re-read delivers it before the write returns. (No synctest.Wait here: the withdrawal
				// it starts waits on the keeper's save lock, which the bubble does not count as blocked.)
				r.k.Observe(storedOf(rec), rec.Revision)
				r.store.landed.Store(nil)
				landed <- tt.success
				synctest.Wait()
				if tt.success {
					if h := r.store.history(); len(h) != 1 {
						t.Fatalf("while the refresh is at the AS the writes are %v; want only its start", h)
					}
				} else {
					time.Sleep(fleetStoreRetry + time.Second)
					synctest.Wait()
				}
				gate <- 1
				synctest.Wait()
				if h := r.store.history(); !slices.Equal(h, tt.writes) || r.as.Calls() != 1 || r.as.Reused() {
					t.Errorf("writes %v, %d refresh requests, reuse %v; want %v and one request", h, r.as.Calls(), r.as.Reused(), tt.writes)
				}
			})
		})
	}
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
