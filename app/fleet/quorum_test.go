package fleet

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
)

// TestQuorumLossEndsTheLeadAndFailsFastUntilQuorumReturns follows the proof: stop the etcd
// leader, then a second member. Without quorum, writes fail fast with ErrUnavailable and the leader
// gives up its lead within the lease TTL (nobody leads); once the members are back, an instance leads
// again and its fenced writes work.
func TestQuorumLossEndsTheLeadAndFailsFastUntilQuorumReturns(t *testing.T) {
	t.Parallel() // each test has its own cluster; most of the time is spent waiting on etcd
	c := testbed.StartEtcdCluster(t, 3)
	r := newRig(t, c)
	a, ra := r.open("alpha")
	b, rb := r.open("bravo")
	a.Join("srv")
	ra.wait(t, "leader srv true", 5*time.Second)
	b.Join("srv")
	stored, err := a.Put("srv", secretRecord(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	first, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Member(first).Stop()
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatalf("two members left: %v", err)
	}
	if !a.Leading("srv") {
		// Not the property under test (a slow election can outlast the TTL), but worth seeing.
		t.Logf("alpha lost the lead when one etcd member stopped: %q", ra.Calls())
	}
	second, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c.Member(second).Stop()
	lost := time.Now()

	start := time.Now()
	_, err = a.Put("srv", stored)
	if took := time.Since(start); !errors.Is(err, keychain.ErrUnavailable) || took > time.Second+500*time.Millisecond {
		t.Fatalf("Put without quorum = %v after %v; want ErrUnavailable within the 1 s OpTimeout", err, took)
	}
	if _, err := a.Get("srv"); !errors.Is(err, keychain.ErrUnavailable) {
		t.Fatalf("Get without quorum = %v; want ErrUnavailable", err)
	}
	ra.wait(t, "leader srv false", testTTL+time.Second-time.Since(lost))
	t.Logf("lead given up %v after quorum was lost", time.Since(lost))
	if a.Leading("srv") || b.Leading("srv") {
		t.Fatalf("an instance still leads without quorum")
	}
	if rb.has("leader srv true") {
		t.Fatalf("bravo took the lead without quorum: %q", rb.Calls())
	}
	if err := a.Ask("srv", "0123456789abcdef", "expiring"); !errors.Is(err, keychain.ErrUnavailable) {
		t.Fatalf("Ask without quorum = %v; want ErrUnavailable", err)
	}

	c.Member(first).Start()
	c.Member(second).Start()
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatalf("quorum back: %v", err)
	}
	back := time.Now()
	fs := []*Fleet{a, b}
	i := leaderOf(t, "srv", 10*time.Second, fs...)
	t.Logf("%s leads again %v after quorum returned", fs[i].Instance(), time.Since(back))
	cur, err := fs[i].Get("srv")
	if err != nil {
		t.Fatalf("Get after quorum returned: %v", err)
	}
	cur.RefreshStarted = time.Now()
	marked, err := fs[i].Put("srv", cur)
	if err != nil {
		t.Fatalf("the new leader's marker write: %v", err)
	}
	// The other instance's watch was re-established: it hears of the write.
	[]*recorder{ra, rb}[1-i].wait(t, fmt.Sprintf("changed srv %d", marked.Revision), 5*time.Second)
}
