//go:build linux

package fleetbench

import (
	"slices"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
)

// TestFleetOfThreeBinariesHasOneRefresherAndSurvivesTheOwnersSIGKILL is the short proof of issue 15
// with the real binary: three `authkeeper serve` processes on a real three-member etcd cluster share
// one grant (one browser sign-in on box1; box2 and box3 join it with `authkeeper add` and no sign-in),
// agents call through all three proxies, and the owner is killed with SIGKILL right after a refresh.
// Calls through the survivors never fail, another instance leads within the lease, the AS's count of
// refresh grants equals the refreshes the instances' audit logs record, one instance refreshes at a
// time (the refresher changes only across the kill), the AS never sees a refresh token twice, and
// no token (nor the fleet key) is in etcd's files, in any key or value written under the prefix, or
// in any instance's output and files. `make soak` runs the long version, with quorum loss.
func TestFleetOfThreeBinariesHasOneRefresherAndSurvivesTheOwnersSIGKILL(t *testing.T) {
	b := New(t, Options{AccessTokenTTL: 10 * time.Second})
	b.SignIn(t)
	calls := b.StartCalls(t, 100*time.Millisecond)
	owner := b.Owner(t, b.Instances[len(b.Instances)-1], 10*time.Second)

	// Status across the fleet: every instance names the same owner, which alone says it leads, with
	// every instance live and serving the grant (the view is read every 2 s: wait for one).
	for _, in := range b.Instances {
		waitStatus(t, in, 6*time.Second, func(h engine.Health) bool {
			f := FleetOf(h)
			return h.Fleet != nil && len(h.Fleet.Members) == 3 && h.Fleet.Instance == in.ID &&
				f != nil && f.Owner == owner.ID && f.Leading == (in == owner) && len(f.Serving) == 3
		})
	}

	// Steady state: the owner refreshes at half-life and the two others adopt its record.
	waitFor(t, b.TTL+5*time.Second, "the owner's first refresh, adopted by the others", func() bool {
		refs, adopted := b.Refreshes(), b.Adopted(time.Time{})
		if len(refs) == 0 || len(refs) != b.ASRefreshes(t) {
			return false
		}
		for _, in := range b.Instances {
			if in != owner && adopted[in.ID] == 0 {
				return false
			}
		}
		return true
	})

	// SIGKILL the owner right after its refresh: the token the others serve has most of its life left.
	calls.Stop(owner.ID)
	killed := owner.Kill()
	atKill := b.ASRefreshes(t)
	next, led := b.WaitLeader(owner, LeaseTTL+5*time.Second)
	if next == nil {
		t.Fatalf("no surviving instance leads %s %s after %s was killed", Server, LeaseTTL+5*time.Second, owner.ID)
	}
	takeover := led.Sub(killed)
	var firstAfter time.Time
	waitFor(t, LeaseTTL+b.TTL, "the new owner's first refresh, adopted by the other survivor", func() bool {
		for _, r := range b.Refreshes() {
			if r.At.After(killed) {
				firstAfter = r.At
				break
			}
		}
		if firstAfter.IsZero() || b.ASRefreshes(t) <= atKill {
			return false
		}
		for _, in := range b.Live() {
			if in != next && b.Adopted(firstAfter)[in.ID] == 0 {
				return false
			}
		}
		return true
	})
	for _, in := range b.Live() {
		waitStatus(t, in, 8*time.Second, func(h engine.Health) bool {
			f := FleetOf(h)
			return h.Fleet != nil && len(h.Fleet.Members) == 2 && f != nil && f.Owner == next.ID && len(f.Serving) == 2
		})
	}
	log := calls.StopAll()
	t.Logf("%s killed; %s led %s later; the first refresh after the kill came %s after it", owner.ID, next.ID,
		takeover.Round(time.Millisecond), since(killed, firstAfter))

	t.Run("calls", func(t *testing.T) {
		before, after := Count(Between(log, time.Time{}, killed)), Count(Between(log, killed, time.Time{}))
		t.Logf("calls before the kill %+v, through the survivors after it %+v", before, after)
		if before.OK == 0 || before.Failed+before.FleetUnavailable > 0 {
			t.Errorf("before the kill: %+v; want only answered calls", before)
		}
		if after.OK == 0 || after.Failed+after.FleetUnavailable > 0 {
			t.Errorf("through the survivors after the kill: %+v; want only answered calls", after)
		}
	})

	t.Run("takeover", func(t *testing.T) {
		if limit := LeaseTTL + 3*time.Second; takeover > limit {
			t.Errorf("%s took the grant over %s after the kill; want within the lease (%s) and a little", next.ID, takeover, LeaseTTL)
		}
	})

	t.Run("one-refresher", func(t *testing.T) {
		audit, as := b.WaitAccounted(t, 3*time.Second)
		refs := b.Refreshes()
		runs := Runs(refs)
		t.Logf("%d refresh grants at the AS; audit logs: %s", as, FormatRuns(runs))
		if audit != as {
			t.Errorf("the AS received %d refresh grants, the instances' audit logs record %d refreshes", as, audit)
		}
		if err := OneRefresher(refs, []time.Time{killed}); err != nil {
			t.Error(err)
		}
		for _, r := range refs {
			if want := pick(r.At.Before(killed), owner.ID, next.ID); r.Instance != want {
				t.Errorf("%s refreshed at %s; want only %s %s the kill", r.Instance, r.At.Format("15:04:05.000"), want,
					pick(r.At.Before(killed), "before", "after"))
			}
		}
		if n := b.Reuse(t); n != 0 {
			t.Errorf("the AS saw a refresh token twice: %d reuse/revocation events", n)
		}
	})

	t.Run("no-plaintext", func(t *testing.T) {
		b.SyncWatch(t, 10*time.Second)
		recs := b.Records(t)
		secrets := b.Secrets(t)
		// The secrets are the tokens the instances really served: what the headers helper hands out
		// now is among them.
		known := make([]string, 0, len(secrets))
		for _, s := range secrets {
			known = append(known, s.Value)
		}
		for _, in := range b.Live() {
			if tok := in.HeadersToken(t, Server); !slices.Contains(known, tok) {
				t.Errorf("the token %s serves is not one the watch saw stored: the search below would miss tokens", in.ID)
			}
		}
		// A search that reads nothing cannot pass: the last record's ciphertext is in etcd's files.
		if len(recs) < 3 || len(b.Cluster.ScanDataDirs([]byte(recs[len(recs)-1].Sealed))) == 0 {
			t.Fatalf("%d record versions seen; the last one's ciphertext is not in etcd's data directories", len(recs))
		}
		if hits := b.Leaks(t, secrets); len(hits) > 0 {
			t.Errorf("in plain text: %v", hits)
		}
		t.Logf("%d record versions, %d secrets searched for", len(recs), len(secrets))
	})
}

// waitStatus polls `authkeeper status --json` on in until ok holds; the test fails if it does not
// within the time given.
func waitStatus(t *testing.T, in *Instance, within time.Duration, ok func(engine.Health) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		h := in.StatusJSON(t)
		if ok(h) {
			return
		}
		if time.Now().After(deadline) {
			f := FleetOf(h)
			t.Fatalf("status --json on %s after %s: fleet %+v, %s's fleet %+v", in.ID, within, h.Fleet, Server, f)
		}
		time.Sleep(200 * time.Millisecond) // other processes' state
	}
}

// waitFor polls cond (other processes' state) until it holds. If it does not within the time given,
// the test is marked failed and goes on, so that the checks after it say what went wrong.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("%s did not happen within %s", what, within)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func pick[T any](c bool, a, b T) T {
	if c {
		return a
	}
	return b
}

// since says how long after from at came ("never" for a zero at).
func since(from, at time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return at.Sub(from).Round(time.Millisecond).String()
}
