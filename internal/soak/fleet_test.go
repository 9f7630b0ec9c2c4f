//go:build soak

package soak

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/fleetbench"
)

// The fleet case's phases. Access tokens live 15 s and refresh at half-life; the election lease is 5 s.
const (
	fleetTTL         = 15 * time.Second
	fleetSteady      = 40 * time.Second // three instances, the owner refreshing
	fleetAfterKill   = 25 * time.Second // two instances after the owner's SIGKILL
	fleetLeaderDown  = 15 * time.Second // the etcd leader stopped: two members of three, still a quorum
	fleetQuorumLost  = 25 * time.Second // each quorum loss: longer than a token lives
	fleetQuorumAgain = 20 * time.Second // after each quorum loss
	// fleetResume bounds how soon after the quorum's return a refresh must come: a new raft leader, a
	// new session per instance (its retries back off to 2 s, each request waits up to 3 s), the
	// candidacies of lost sessions gone (revoked, or expired a lease after the new raft leader), and
	// one refresh.
	fleetResume = fleetbench.LeaseTTL + 5*time.Second
)

func fleetCases(t *testing.T, r *report) {
	r.run(t, "fleet", "three-instances-on-etcd",
		"three `authkeeper serve` instances on a real three-member etcd cluster share one grant (one sign-in, two "+
			"joins without one); agents call through every proxy throughout. Steady state, after the owner's "+
			"SIGKILL and with the etcd leader stopped: zero failed calls; another instance leads within the lease "+
			"(5 s) + 3 s. The quorum is lost twice for 25 s — a second before the owner's planned refresh (it is "+
			"still elected and must refuse), and right after a refresh (its lease lapses first): zero refreshes "+
			"at the AS, calls are answered or get the retryable auth_failure/fleet_unavailable, and only once "+
			"the token has expired; within the lease + 5 s of the quorum's return a refresh comes and calls are "+
			"answered again. Throughout: the AS's refresh grants equal the refreshes in the instances' audit "+
			"logs, the refresher changes only across a disruption, zero refresh-token reuse, and no token nor "+
			"the fleet key in etcd's files, in any key or value written under the prefix, or in any instance's "+
			"output and files", fleetSoak)
}

// episode is one loss of the etcd quorum.
type episode struct {
	name           string
	lost, back     time.Time
	asDuring       int       // refresh grants the AS received while the quorum was lost
	relead         time.Time // when an instance was first seen leading after the quorum's return
	resumed        time.Time // the first refresh after the quorum's return
	beforePlanned  time.Duration
	stopped        []string
	survivingToken time.Time // the expiry of the newest token stored before the loss
}

func fleetSoak(t *testing.T, c *caseResult) {
	c.Note = "Each instance is an installation of its own (private HOME, keyring and browser) running " +
		"`authkeeper serve --store etcd://…/fleet-bench` with the fleet key (box1 through --fleet-key-file and " +
		"--instance, box2 and box3 through $AUTHKEEPER_FLEET_KEY and $AUTHKEEPER_INSTANCE); the etcd members are " +
		"Debian's etcd 3.4 on loopback, stopped with SIGTERM. oidc-provider issues 15-s opaque access tokens " +
		"(introspected by the Go SDK MCP server on every call) and rotating refresh tokens with reuse detection. " +
		"One Go SDK agent per instance calls echo every 250 ms. The test watches every key under the prefix from " +
		"revision 1 and opens each record version with the fleet key, so it knows every token the fleet stored, " +
		"and searches for each of them in etcd's data directories, in every key and value, and in every " +
		"instance's output and files. The owner is killed about 5 s after its last refresh, so that the new " +
		"owner must refresh as soon as it takes over."
	b := fleetbench.New(t, fleetbench.Options{AccessTokenTTL: fleetTTL})
	b.SignIn(t)
	calls := b.StartCalls(t, 250*time.Millisecond)
	start := time.Now()
	owner := b.Owner(t, b.Instances[1], 15*time.Second)
	c.figure("first_owner", owner.ID)
	time.Sleep(fleetSteady)

	// SIGKILL the owner about 5 s into a token's life: no refresh in flight, about 10 s of validity left.
	waitRefresh(t, b)
	time.Sleep(5 * time.Second)
	_, asNow := b.WaitAccounted(t, 3*time.Second)
	calls.Stop(owner.ID)
	killed := owner.Kill()
	next, led := b.WaitLeader(owner, 3*fleetbench.LeaseTTL)
	if next == nil {
		c.check(t, false, "no surviving instance leads %s after the owner was killed", 3*fleetbench.LeaseTTL)
		t.FailNow()
	}
	takeover := led.Sub(killed)
	var firstAfterKill time.Time
	waitFor(fleetTTL, func() bool {
		firstAfterKill = firstRefreshAfter(b, killed)
		return !firstAfterKill.IsZero() && b.ASRefreshes(t) > asNow
	})
	c.figure("takeover_after_sigkill_s", seconds(takeover))
	if !firstAfterKill.IsZero() {
		c.figure("first_refresh_after_sigkill_s", seconds(firstAfterKill.Sub(killed)))
	}
	c.figure("owner_after_sigkill", next.ID)
	time.Sleep(time.Until(killed.Add(fleetAfterKill)))

	// Stop the etcd leader (SIGTERM): two members of three keep the quorum.
	leader := etcdLeader(t, b)
	leaderDown := time.Now()
	b.Cluster.Member(leader).Stop()
	time.Sleep(fleetLeaderDown)

	// First loss: a second member stops a second before the owner's planned refresh. The owner is
	// still elected for the rest of its lease and must refuse to refresh.
	planned := plannedRefresh(t, b.Owner(t, next, 10*time.Second))
	time.Sleep(time.Until(planned.Add(-time.Second)))
	atRefresh := loseQuorum(t, b, "at_the_planned_refresh", leader, (leader+1)%b.Cluster.Len())
	atRefresh.beforePlanned = planned.Sub(atRefresh.lost)

	// Second loss: two members stop right after a refresh. The owner's lease lapses before its next
	// planned refresh; after the quorum's return an instance is elected afresh.
	waitRefresh(t, b)
	l := etcdLeader(t, b)
	afterRefresh := loseQuorum(t, b, "right_after_a_refresh", l, (l+1)%b.Cluster.Len())
	log := calls.StopAll()
	end := time.Now()
	episodes := []*episode{atRefresh, afterRefresh}

	// Calls, per phase.
	type phase struct {
		name     string
		from, to time.Time
	}
	phases := []phase{
		{"steady_three_instances", start, killed},
		{"after_owner_sigkill", killed, leaderDown},
		{"etcd_leader_stopped", leaderDown, atRefresh.lost},
	}
	for i, ep := range episodes {
		to := end
		if i+1 < len(episodes) {
			to = episodes[i+1].lost
		}
		phases = append(phases, phase{"quorum_lost_" + ep.name, ep.lost, ep.back}, phase{"quorum_back_" + ep.name, ep.back, to})
	}
	tallies := map[string]fleetbench.Tally{}
	for _, p := range phases {
		tallies[p.name] = fleetbench.Count(fleetbench.Between(log, p.from, p.to))
	}
	c.figure("calls_by_phase", tallies)
	for _, p := range phases {
		tl := tallies[p.name]
		c.check(t, tl.OK > 0 && tl.Failed == 0, "%s: %d calls failed otherwise than with fleet_unavailable (%d answered): %s",
			p.name, tl.Failed, tl.OK, tl.First)
	}
	for _, p := range phases[:3] {
		c.check(t, tallies[p.name].FleetUnavailable == 0, "%s: %d calls got fleet_unavailable", p.name, tallies[p.name].FleetUnavailable)
	}

	// Each quorum loss: no refresh, errors only once the token expired, then a prompt resumption.
	b.SyncWatch(t, 15*time.Second)
	recs := b.Records(t)
	figs := map[string]map[string]any{}
	for i, ep := range episodes {
		for _, r := range recs {
			if r.Written.Before(ep.lost) && r.Expiry.After(ep.survivingToken) {
				ep.survivingToken = r.Expiry
			}
		}
		until := end
		if i+1 < len(episodes) {
			until = episodes[i+1].lost
		}
		during := fleetbench.Between(log, ep.lost, until)
		var early []string
		var lastUnavailable time.Time
		for _, call := range during {
			if !call.FleetUnavailable() {
				continue
			}
			lastUnavailable = call.At
			// A call that asked just before the expiry may be answered a little after it: its start counts.
			if call.At.Add(-call.Took).Before(ep.survivingToken.Add(-time.Second)) {
				early = append(early, call.Instance+" at "+call.At.Format("15:04:05.000"))
			}
		}
		f := map[string]any{"etcd_members_stopped": ep.stopped, "quorum_lost_s": seconds(ep.back.Sub(ep.lost)),
			"refreshes_at_the_as_while_lost": ep.asDuring}
		if ep.beforePlanned != 0 {
			f["quorum_lost_before_the_planned_refresh_s"] = seconds(ep.beforePlanned)
		}
		if !ep.survivingToken.IsZero() {
			f["token_expired_after_quorum_lost_s"] = seconds(ep.survivingToken.Sub(ep.lost))
		}
		if !ep.relead.IsZero() {
			f["leader_seen_after_quorum_back_s"] = seconds(ep.relead.Sub(ep.back))
		}
		if !ep.resumed.IsZero() {
			f["first_refresh_after_quorum_back_s"] = seconds(ep.resumed.Sub(ep.back))
		}
		if lastUnavailable.After(ep.back) {
			f["last_fleet_unavailable_after_quorum_back_s"] = seconds(lastUnavailable.Sub(ep.back))
		}
		figs[ep.name] = f
		c.check(t, ep.asDuring == 0, "%s: %d refreshes at the AS without quorum", ep.name, ep.asDuring)
		c.check(t, tallies["quorum_lost_"+ep.name].FleetUnavailable > 0,
			"%s: no call got fleet_unavailable: the token never expired, the loss was not tested", ep.name)
		c.check(t, !ep.survivingToken.IsZero() && len(early) == 0, "%s: fleet_unavailable before the token expired at %s: %v",
			ep.name, ep.survivingToken.Format("15:04:05.000"), early)
		c.check(t, !ep.resumed.IsZero() && ep.resumed.Sub(ep.back) <= fleetResume,
			"%s: refreshing resumed %s after the quorum's return; want within %s", ep.name, since(ep.back, ep.resumed), fleetResume)
		c.check(t, ep.resumed.IsZero() || lastUnavailable.Before(ep.resumed.Add(2*time.Second)),
			"%s: calls still got fleet_unavailable %s after the refresh that followed the quorum's return", ep.name, since(ep.resumed, lastUnavailable))
	}
	c.figure("quorum_losses", figs)

	// Refreshes: all accounted for, one refresher at a time.
	audit, as := b.WaitAccounted(t, 5*time.Second)
	refs := b.Refreshes()
	byInstance := map[string]int{}
	for _, r := range refs {
		byInstance[r.Instance]++
	}
	c.figure("refreshes", map[string]any{"as_refresh_grants": as, "audit_refreshed": audit, "by_instance": byInstance})
	c.figure("refresher_runs", fleetbench.FormatRuns(fleetbench.Runs(refs)))
	c.check(t, audit == as, "the AS received %d refresh grants, the instances' audit logs record %d refreshes", as, audit)
	err := fleetbench.OneRefresher(refs, []time.Time{killed, leaderDown, atRefresh.lost, afterRefresh.lost})
	c.check(t, err == nil, "two refreshers: %v", err)
	for _, r := range refs {
		c.check(t, r.At.After(killed) || r.Instance == owner.ID, "%s refreshed at %s, before the kill, while %s owned the grant",
			r.Instance, r.At.Format("15:04:05.000"), owner.ID)
		c.check(t, r.At.Before(killed) || r.At.After(leaderDown) || r.Instance == next.ID,
			"%s refreshed at %s, after the kill, while %s owned the grant", r.Instance, r.At.Format("15:04:05.000"), next.ID)
	}
	reuse := b.Reuse(t)
	c.figure("refresh_token_reuse_at_the_as", reuse)
	c.check(t, reuse == 0, "the AS saw a refresh token twice: %d reuse/revocation events", reuse)
	c.check(t, takeover <= fleetbench.LeaseTTL+3*time.Second, "the grant was taken over %s after the SIGKILL", takeover)

	// No plaintext anywhere.
	secrets := b.Secrets(t)
	known := make([]string, 0, len(secrets))
	for _, s := range secrets {
		known = append(known, s.Value)
	}
	for _, in := range b.Live() {
		c.check(t, slices.Contains(known, in.HeadersToken(t, fleetbench.Server)),
			"the token %s serves is not one the watch saw stored", in.ID)
	}
	control := len(recs) > 0 && len(b.Cluster.ScanDataDirs([]byte(recs[len(recs)-1].Sealed))) > 0
	c.check(t, control, "the last record's ciphertext is not in etcd's data directories: the search reads nothing")
	hits := b.Leaks(t, secrets)
	c.figure("record_versions_seen", len(recs))
	c.figure("secrets_searched", len(secrets))
	c.figure("plaintext_hits", len(hits))
	c.check(t, len(hits) == 0, "in plain text: %v", hits)
}

// loseQuorum stops members a and b (a may be stopped already), waits fleetQuorumLost, starts them
// again, and follows the fleet for fleetQuorumAgain: when an instance leads again, when the first
// refresh comes.
func loseQuorum(t *testing.T, b *fleetbench.Bench, name string, a, bb int) *episode {
	t.Helper()
	ep := &episode{name: name, stopped: []string{b.Cluster.Member(a).Name(), b.Cluster.Member(bb).Name()}}
	before := b.ASRefreshes(t)
	ep.lost = time.Now()
	b.Cluster.Member(a).Stop()
	b.Cluster.Member(bb).Stop()
	time.Sleep(time.Until(ep.lost.Add(fleetQuorumLost)))
	ep.asDuring = b.ASRefreshes(t) - before
	ep.back = time.Now()
	b.Cluster.Member(a).Start()
	b.Cluster.Member(bb).Start()
	waitFor(fleetQuorumAgain, func() bool {
		if ep.relead.IsZero() {
			for _, in := range b.Live() {
				if in.Leading(context.Background()) {
					ep.relead = time.Now()
				}
			}
		}
		ep.resumed = firstRefreshAfter(b, ep.back)
		return !ep.resumed.IsZero() && !ep.relead.IsZero()
	})
	time.Sleep(time.Until(ep.back.Add(fleetQuorumAgain)))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Cluster.WaitHealthy(ctx); err != nil {
		t.Fatalf("after %s: %v", name, err)
	}
	return ep
}

// etcdLeader is the index of the cluster's raft leader.
func etcdLeader(t *testing.T, b *fleetbench.Bench) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	leader, err := b.Cluster.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return leader
}

// waitRefresh waits for the grant's next refresh (in any instance's audit log).
func waitRefresh(t *testing.T, b *fleetbench.Bench) {
	t.Helper()
	base := len(b.Refreshes())
	if !waitFor(2*fleetTTL, func() bool { return len(b.Refreshes()) > base }) {
		t.Fatalf("no refresh within %s", 2*fleetTTL)
	}
}

// firstRefreshAfter is the time of the first refresh after from (zero: none yet).
func firstRefreshAfter(b *fleetbench.Bench, from time.Time) time.Time {
	for _, r := range b.Refreshes() {
		if r.At.After(from) {
			return r.At
		}
	}
	return time.Time{}
}

// plannedRefresh is when the instance's engine plans to refresh the grant next (its snapshot's
// Next), once the refresh it plans is a scheduled one more than 2 s ahead.
func plannedRefresh(t *testing.T, in *fleetbench.Instance) time.Time {
	t.Helper()
	deadline := time.Now().Add(2 * fleetTTL)
	var last error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		snap, err := in.Status(ctx)
		cancel()
		if err == nil {
			for _, s := range snap.Servers {
				if s.Name == fleetbench.Server && s.NextTrigger == engine.TriggerSchedule && time.Until(s.Next) > 2*time.Second {
					return s.Next
				}
			}
			err = fmt.Errorf("no scheduled refresh planned more than 2 s ahead")
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", in.ID, last)
		}
		time.Sleep(250 * time.Millisecond) // another process's plan
	}
}

// since says how long after from at came ("never" for a zero at).
func since(from, at time.Time) string {
	if at.IsZero() {
		return "never"
	}
	return at.Sub(from).Round(100 * time.Millisecond).String()
}

// seconds is d in seconds, to a tenth (the report's precision: polling takes 50–250 ms).
func seconds(d time.Duration) float64 { return d.Round(100 * time.Millisecond).Seconds() }

// TestSoakFleet runs the fleet case alone (`go test -tags soak -run TestSoakFleet ./internal/soak/`);
// its report is logged, never written: `make soak` (TestSoak) writes the full one.
func TestSoakFleet(t *testing.T) {
	r := &report{started: time.Now()}
	defer r.write(t, "", 0)
	fleetCases(t, r)
}
