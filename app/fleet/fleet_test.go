package fleet

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
)

// TestFleetOnAThreeMemberCluster runs the fleet's behaviours against one real etcd cluster, each
// subtest under its own prefix (a cluster takes seconds to start).
func TestFleetOnAThreeMemberCluster(t *testing.T) {
	t.Parallel() // each test has its own cluster; most of the time is spent waiting on etcd
	c := testbed.StartEtcdCluster(t, 3)
	t.Run("PutGetRoundTripLeavesOnlyCiphertextInEtcd", func(t *testing.T) { testCiphertextOnly(t, newRig(t, c)) })
	t.Run("PutIsCompareAndSwapOnTheRevision", func(t *testing.T) { testCompareAndSwap(t, newRig(t, c)) })
	t.Run("RefreshMarkerIsRefusedUnlessElected", func(t *testing.T) { testMarkerFence(t, newRig(t, c)) })
	t.Run("ExactlyOneLeadsAndCloseHandsOver", func(t *testing.T) { testOneLeader(t, newRig(t, c)) })
	t.Run("ChangedReachesOthersNotTheWriter", func(t *testing.T) { testChanged(t, newRig(t, c)) })
	t.Run("AskReachesOnlyTheLeader", func(t *testing.T) { testAsk(t, newRig(t, c)) })
	t.Run("RecordSealedWithAnUnknownKeyIsRefused", func(t *testing.T) { testUnknownKey(t, newRig(t, c)) })
	t.Run("LeaveResignsAndStopsServing", func(t *testing.T) { testLeave(t, newRig(t, c)) })
	t.Run("WatchAfterACompactedGapReportsEveryDifference", func(t *testing.T) { testResync(t, newRig(t, c)) })
	t.Run("ASecondLiveInstanceWithTheSameIDIsRefused", func(t *testing.T) { testDuplicateID(t, newRig(t, c)) })
}

// testDuplicateID: two live instances with one id would hide each other's writes and asks; the second
// Open waits out a previous holder's lease (a restart) and then refuses, naming the holder. Once the
// first leaves, the id is free at once.
func testDuplicateID(t *testing.T, r *rig) {
	first, _ := r.open("same")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, Config{Endpoints: r.c.Endpoints(), Prefix: r.prefix, Keys: r.keys, Instance: "same", LeaseTTL: testTTL,
		OpTimeout: time.Second})
	if !errors.Is(err, ErrInstanceInUse) || !strings.Contains(err.Error(), "--instance") {
		t.Fatalf("a second live instance with the same id: %v; want ErrInstanceInUse naming --instance", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	r.open("same") // fails the test if refused
}

// secretRecord is a record whose every secret is unique to the test, so a scan can look for them.
func secretRecord(t *testing.T) keychain.Record {
	return keychain.Record{
		AccessToken:  "at-" + randHex(t, 16),
		RefreshToken: "rt-" + randHex(t, 16),
		TokenType:    "Bearer",
		Scopes:       []string{"mcp:tools"},
		Expiry:       time.Now().Add(time.Hour).UTC().Truncate(time.Second),
		Binding:      keychain.Binding{ServerURL: "https://mcp.example/", ClientID: "cid", ClientSecret: "cs-" + randHex(t, 16)},
	}
}

func testCiphertextOnly(t *testing.T, r *rig) {
	raw := r.raw()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A watch of every key the fleet writes, to check each value as etcd hands it out.
	var mu sync.Mutex
	var seen [][]byte
	wch := raw.Watch(ctx, r.prefix, clientv3.WithPrefix())
	go func() {
		for wr := range wch {
			mu.Lock()
			for _, ev := range wr.Events {
				seen = append(seen, ev.Kv.Value)
			}
			mu.Unlock()
		}
	}()

	a, _ := r.open("alpha")
	a.Join("mcp-a")
	rec := secretRecord(t)
	put, err := a.Put("mcp-a", rec)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if put.Revision == 0 || put.Written.IsZero() {
		t.Fatalf("Put returned revision %d, written %v; want both set", put.Revision, put.Written)
	}
	got, err := a.Get("mcp-a")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if diff := cmp.Diff(put, got, cmpopts.EquateApproxTime(time.Millisecond)); diff != "" {
		t.Fatalf("Get after Put (-put +get):\n%s", diff)
	}

	resp, err := raw.Get(ctx, r.prefix+"/records/mcp-a")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("raw read: %v, %v", resp, err)
	}
	var env envelope
	if err := json.Unmarshal(resp.Kvs[0].Value, &env); err != nil || env.V != 1 || env.Writer != "alpha" || env.Kid != "k1" {
		t.Fatalf("stored envelope %+v, %v; want v1 written by alpha with key k1", env, err)
	}
	sealed, err := base64.StdEncoding.DecodeString(env.Sealed)
	if err != nil {
		t.Fatalf("sealed field: %v", err)
	}
	secrets := []string{rec.AccessToken, rec.RefreshToken, rec.Binding.ClientSecret}
	for _, s := range secrets {
		if strings.Contains(string(resp.Kvs[0].Value), s) || strings.Contains(string(sealed), s) {
			t.Errorf("etcd's value contains a secret in plaintext")
		}
		if files := r.c.ScanDataDirs([]byte(s)); len(files) != 0 {
			t.Errorf("etcd's data directories contain a secret in plaintext: %v", files)
		}
	}
	// The scan finds what etcd does hold in plaintext (the writer's id), so finding nothing above
	// means something.
	if files := r.c.ScanDataDirs([]byte(`"writer":"alpha"`)); len(files) == 0 {
		t.Fatalf("the scan does not find the plaintext envelope fields either: it proves nothing")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Fatalf("the watch saw no value")
	}
	for _, v := range seen {
		for _, s := range secrets {
			if strings.Contains(string(v), s) {
				t.Errorf("a watched value contains a secret in plaintext")
			}
		}
	}
}

func testCompareAndSwap(t *testing.T, r *rig) {
	a, _ := r.open("alpha")
	rec := secretRecord(t)
	first, err := a.Put("srv", rec)
	if err != nil {
		t.Fatalf("first Put (revision 0: must be absent): %v", err)
	}
	if _, err := a.Put("srv", rec); !errors.Is(err, keychain.ErrConflict) {
		t.Fatalf("second Put at revision 0 = %v; want ErrConflict (the record exists)", err)
	}
	rec2 := first
	rec2.AccessToken = "at2-" + randHex(t, 8)
	second, err := a.Put("srv", rec2)
	if err != nil || second.Revision <= first.Revision {
		t.Fatalf("Put at the current revision = %d, %v; want a newer revision", second.Revision, err)
	}
	stale := first
	stale.AccessToken = "stale"
	if _, err := a.Put("srv", stale); !errors.Is(err, keychain.ErrConflict) || !strings.Contains(err.Error(), fmt.Sprint(second.Revision)) {
		t.Fatalf("Put at a stale revision = %v; want ErrConflict naming the stored revision", err)
	}
	got, err := a.Get("srv")
	if err != nil || got.AccessToken != rec2.AccessToken || got.Revision != second.Revision {
		t.Fatalf("Get = %v (revision %d), %v; want the second write", got, got.Revision, err)
	}
	if err := a.Delete("srv"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := a.Get("srv"); !errors.Is(err, keychain.ErrNotFound) {
		t.Fatalf("Get after Delete = %v; want ErrNotFound", err)
	}
	if err := a.Delete("srv"); !errors.Is(err, keychain.ErrNotFound) {
		t.Fatalf("second Delete = %v; want ErrNotFound", err)
	}
}

func testMarkerFence(t *testing.T, r *rig) {
	a, ra := r.open("alpha")
	b, _ := r.open("bravo")
	rec := secretRecord(t)
	stored, err := a.Put("srv", rec)
	if err != nil {
		t.Fatal(err)
	}
	marked := stored
	marked.RefreshStarted = time.Now()
	if _, err := a.Put("srv", marked); !errors.Is(err, keychain.ErrConflict) {
		t.Fatalf("marker write without joining = %v; want ErrConflict", err)
	}
	a.Join("srv")
	ra.wait(t, "leader srv true", 5*time.Second)
	b.Join("srv")
	if _, err := b.Put("srv", marked); !errors.Is(err, keychain.ErrConflict) {
		t.Fatalf("marker write by the follower = %v; want ErrConflict", err)
	}
	if _, err := a.Put("srv", marked); err != nil {
		t.Fatalf("marker write by the leader: %v", err)
	}
}

func testOneLeader(t *testing.T, r *rig) {
	a, ra := r.open("alpha")
	b, rb := r.open("bravo")
	a.Join("srv")
	b.Join("srv")
	a.Join("srv") // idempotent
	fs := []*Fleet{a, b}
	recs := []*recorder{ra, rb}
	lead := leaderOf(t, "srv", 5*time.Second, fs...)
	other := 1 - lead
	recs[lead].wait(t, "leader srv true", time.Second)
	if recs[other].has("leader srv") {
		t.Fatalf("the follower was told %q", recs[other].Calls())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := fs[other].Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	want := ServerState{Owner: fs[lead].Instance(), Serving: []string{"alpha", "bravo"}}
	if diff := cmp.Diff(want, st.Servers["srv"]); diff != "" {
		t.Fatalf("Status of srv (-want +got):\n%s", diff)
	}
	if len(st.Members) != 2 || st.Members[0].ID != "alpha" || st.Members[1].ID != "bravo" || st.Members[0].PID == 0 {
		t.Fatalf("Status members = %+v; want alpha and bravo", st.Members)
	}

	start := time.Now()
	if err := fs[lead].Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close revokes the lease: the other instance takes over at once, not after the lease's TTL.
	took := recs[other].wait(t, "leader srv true", testTTL/2)
	if !fs[other].Leading("srv") {
		t.Fatalf("the other instance was told it leads but Leading is false")
	}
	t.Logf("takeover after Close: %v (since Close began: %v)", took, time.Since(start))
}

func testChanged(t *testing.T, r *rig) {
	a, ra := r.open("alpha")
	b, rb := r.open("bravo")
	put, err := a.Put("srv", secretRecord(t))
	if err != nil {
		t.Fatal(err)
	}
	rb.wait(t, fmt.Sprintf("changed srv %d", put.Revision), 5*time.Second)
	// bravo writes too; once alpha has seen that, alpha's own write would have arrived before it.
	put2, err := b.Put("srv", put)
	if err != nil {
		t.Fatal(err)
	}
	ra.wait(t, fmt.Sprintf("changed srv %d", put2.Revision), 5*time.Second)
	if diff := cmp.Diff([]string{fmt.Sprintf("changed srv %d", put2.Revision)}, ra.Calls()); diff != "" {
		t.Fatalf("alpha's calls (-want +got): %s", diff)
	}
	if err := a.Delete("srv"); err != nil {
		t.Fatal(err)
	}
	// Delete returns no revision: bravo's second call is the delete's.
	rb.waitN(t, "changed srv ", 2, 5*time.Second)
	put3, err := b.Put("srv", keychain.Record{})
	if err != nil {
		t.Fatal(err)
	}
	ra.wait(t, fmt.Sprintf("changed srv %d", put3.Revision), 5*time.Second)
	if n := len(ra.Calls()); n != 2 {
		t.Fatalf("alpha's calls %q; want only bravo's two writes (never its own write or delete)", ra.Calls())
	}
	if n := len(rb.Calls()); n != 2 {
		t.Fatalf("bravo's calls %q; want alpha's write and delete (never its own writes)", rb.Calls())
	}
}

func testAsk(t *testing.T, r *rig) {
	a, ra := r.open("alpha")
	b, rb := r.open("bravo")
	c, rc := r.open("charlie")
	fs, recs := []*Fleet{a, b, c}, []*recorder{ra, rb, rc}
	for _, f := range fs {
		f.Join("srv")
	}
	lead := leaderOf(t, "srv", 5*time.Second, fs...)
	asker, bystander := (lead+1)%3, (lead+2)%3
	if err := fs[asker].Ask("srv", "0123456789abcdef", "unauthorized"); err != nil {
		t.Fatalf("Ask: %v", err)
	}
	recs[lead].wait(t, "asked srv 0123456789abcdef unauthorized", 5*time.Second)
	// The bystander asks too: the leader hears it, and by then it would have heard the first ask.
	if err := fs[bystander].Ask("srv", "fedcba9876543210", "expiring"); err != nil {
		t.Fatalf("Ask: %v", err)
	}
	recs[lead].wait(t, "asked srv fedcba9876543210 expiring", 5*time.Second)
	for _, i := range []int{asker, bystander} {
		if recs[i].has("asked") {
			t.Fatalf("a follower was asked: %q", recs[i].Calls())
		}
	}
}

func testUnknownKey(t *testing.T, r *rig) {
	a, _ := r.open("alpha")
	if _, err := a.Put("srv", secretRecord(t)); err != nil {
		t.Fatal(err)
	}
	otherKeys, _ := testKeys(t, "k2")
	b, _ := r.openWith(Config{Instance: "bravo", Keys: otherKeys})
	if _, err := b.Get("srv"); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"k1"`) {
		t.Fatalf("Get with other keys = %v; want ErrUnknownKey naming k1", err)
	}
}

func testLeave(t *testing.T, r *rig) {
	a, ra := r.open("alpha")
	b, rb := r.open("bravo")
	a.Join("srv")
	ra.wait(t, "leader srv true", 5*time.Second)
	b.Join("srv")
	a.Leave("srv")
	if a.Leading("srv") {
		t.Fatalf("Leading after Leave")
	}
	ra.wait(t, "leader srv false", time.Second)
	took := rb.wait(t, "leader srv true", time.Second)
	t.Logf("bravo leads %v after alpha left", took)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	deadline := time.Now().Add(3 * time.Second)
	for {
		st, err := b.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := st.Servers["srv"]
		if got.Owner == "bravo" && cmp.Equal(got.Serving, []string{"bravo"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Status of srv after alpha left: %+v; want bravo owning and serving alone", got)
		}
		time.Sleep(20 * time.Millisecond) // alpha's serving key is deleted in the background
	}
	a.Join("srv")
	if leaderOf(t, "srv", time.Second, a, b) != 1 {
		t.Fatalf("alpha, joining again, took the lead from bravo")
	}
}

func testResync(t *testing.T, r *rig) {
	a, _ := r.open("alpha")
	one, err := a.Put("one", secretRecord(t))
	if err != nil {
		t.Fatal(err)
	}
	two, err := a.Put("two", secretRecord(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.raw().Compact(ctx, int64(two.Revision)); err != nil {
		t.Fatalf("compact: %v", err)
	}
	// An instance whose records watch last saw "one" at an older revision, "two" as it is, and "gone",
	// since deleted, resumes after a revision etcd has compacted away.
	f, rec := r.bare("bravo")
	f.records = map[string]int64{"one": int64(one.Revision) - 1, "two": int64(two.Revision), "gone": 3}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.watchPrefix("records", f.key("records")+"/", 1, f.onRecords, f.resyncRecords)
	}()
	rec.waitN(t, "changed ", 2, 5*time.Second)
	three, err := a.Put("three", secretRecord(t))
	if err != nil {
		t.Fatal(err)
	}
	rec.wait(t, fmt.Sprintf("changed three %d", three.Revision), 5*time.Second)
	got := rec.Calls()
	if len(got) != 3 {
		t.Fatalf("calls after the compacted gap %q; want one (rewritten), gone (deleted), then three; not two", got)
	}
	gap := slices.Sorted(slices.Values(got[:2]))
	if !strings.HasPrefix(gap[0], "changed gone ") || gap[1] != fmt.Sprintf("changed one %d", one.Revision) ||
		got[2] != fmt.Sprintf("changed three %d", three.Revision) {
		t.Fatalf("calls after the compacted gap %q; want one (rewritten), gone (deleted), then three; not two", got)
	}
}
