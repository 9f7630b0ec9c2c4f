package fleetbench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/authkeeper/authkeeper/keychain"
)

// watch is the test's own etcd watch of every key under the fleet's prefix, from revision 1 (so it
// misses nothing written before it was established); it keeps every event. The cluster is never
// compacted, so the history is all there. Safe for concurrent use.
type watch struct {
	cli    *clientv3.Client
	prefix string

	mu   sync.Mutex
	evs  []KV
	last int64 // the highest revision seen
	err  error
}

// KV is one event of the watch: a put (Value set) or a delete of Key at revision Rev.
type KV struct {
	Key    string
	Value  []byte
	Rev    int64
	Delete bool
}

func startWatch(t *testing.T, endpoints []string, prefix string) *watch {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	w := &watch{cli: cli, prefix: prefix}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ch := cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(1))
	go func() {
		defer close(done)
		for resp := range ch {
			w.mu.Lock()
			if err := resp.Err(); err != nil && ctx.Err() == nil {
				w.err = err
			}
			for _, ev := range resp.Events {
				kv := KV{Key: string(ev.Kv.Key), Rev: ev.Kv.ModRevision, Delete: ev.Type == clientv3.EventTypeDelete}
				if !kv.Delete {
					kv.Value = append([]byte(nil), ev.Kv.Value...)
				}
				w.evs = append(w.evs, kv)
				w.last = max(w.last, ev.Kv.ModRevision)
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cli.Close()
	})
	return w
}

// Events returns every event the watch has seen, in revision order.
func (b *Bench) Events() []KV {
	b.watch.mu.Lock()
	defer b.watch.mu.Unlock()
	return append([]KV(nil), b.watch.evs...)
}

// SyncWatch waits until the watch has seen every revision the cluster has made (its current
// revision, read through a linearizable Get) and fails the test if it has not within the time given,
// or if the watch failed.
func (b *Bench) SyncWatch(t testing.TB, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	resp, err := b.watch.cli.Get(ctx, b.Prefix+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatalf("read the fleet's keys: %v", err)
	}
	var want int64
	for _, kv := range resp.Kvs {
		want = max(want, kv.ModRevision)
	}
	for {
		b.watch.mu.Lock()
		last, werr := b.watch.last, b.watch.err
		b.watch.mu.Unlock()
		if werr != nil {
			t.Fatalf("the watch of %s failed: %v", b.Prefix, werr)
		}
		if last >= want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the watch of %s saw revision %d, the cluster is at %d", b.Prefix, last, want)
		case <-time.After(50 * time.Millisecond): // the watch runs in another goroutine
		}
	}
}

// Snapshot returns every key and value under the prefix now (a linearizable read).
func (b *Bench) Snapshot(t testing.TB) []KV {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := b.watch.cli.Get(ctx, b.Prefix+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("read the fleet's keys: %v", err)
	}
	out := make([]KV, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, KV{Key: string(kv.Key), Value: kv.Value, Rev: kv.ModRevision})
	}
	return out
}

// Record is one version of the grant's record as the watch saw it, opened with the fleet key.
type Record struct {
	keychain.Record
	Writer  string    // the instance that wrote it (the envelope's writer)
	Written time.Time // the envelope's time
	Sealed  string    // the ciphertext as stored (base64)
}

// envelope mirrors app/fleet's stored value: {"v":1,"writer":…,"written":…,"kid":…,"sealed":BASE64}.
type envelope struct {
	V       int       `json:"v"`
	Writer  string    `json:"writer"`
	Written time.Time `json:"written"`
	Kid     string    `json:"kid"`
	Sealed  string    `json:"sealed"`
}

// Records opens every version of the grant's record the watch saw, in revision order; the test fails
// if one does not open with the fleet key (so every token the fleet ever stored is known to it).
func (b *Bench) Records(t testing.TB) []Record {
	t.Helper()
	key := b.Prefix + "/records/" + Server
	var out []Record
	for _, kv := range b.Events() {
		if kv.Key != key || kv.Delete {
			continue
		}
		rec, err := b.open(key, kv.Value)
		if err != nil {
			t.Fatalf("record %s at revision %d: %v", key, kv.Rev, err)
		}
		rec.Revision = uint64(kv.Rev)
		out = append(out, rec)
	}
	return out
}

func (b *Bench) open(key string, value []byte) (Record, error) {
	var env envelope
	if err := json.Unmarshal(value, &env); err != nil || env.V != 1 {
		return Record{}, fmt.Errorf("not a version 1 envelope (%v)", err)
	}
	sealed, err := base64.StdEncoding.DecodeString(env.Sealed)
	if err != nil {
		return Record{}, err
	}
	plain, err := b.keys.Open([]byte(key), sealed)
	if err != nil {
		return Record{}, err
	}
	rec := Record{Writer: env.Writer, Written: env.Written, Sealed: env.Sealed}
	if err := json.Unmarshal(plain, &rec.Record); err != nil {
		return Record{}, errors.New("the sealed value is not a record")
	}
	return rec, nil
}

// Secret is a value that must never be seen in plain text, with what it is (for reports: never the
// value itself).
type Secret struct {
	What, Value string
}

// Secrets returns every access and refresh token the fleet stored (from Records) and the fleet key.
func (b *Bench) Secrets(t testing.TB) []Secret {
	t.Helper()
	seen := map[string]bool{}
	out := []Secret{{What: "the fleet key", Value: b.KeySecret()}}
	for _, r := range b.Records(t) {
		for what, v := range map[string]string{"an access token": r.AccessToken, "a refresh token": r.RefreshToken} {
			if len(v) >= 16 && !seen[v] {
				seen[v] = true
				out = append(out, Secret{What: fmt.Sprintf("%s (record revision %d)", what, r.Revision), Value: v})
			}
		}
	}
	return out
}

// Leaks searches for every secret in etcd's data directories (each member's WAL and database), in
// every key and value the watch saw and the cluster holds now, and in every instance's outputs and
// files (e2e.Install.LeakText: serve and CLI output, the audit log, the settings). It returns where
// each hit was, never the secret.
func (b *Bench) Leaks(t testing.TB, secrets []Secret) []string {
	t.Helper()
	texts := map[string]string{}
	var kvs strings.Builder
	for _, kv := range append(b.Events(), b.Snapshot(t)...) {
		kvs.WriteString(kv.Key)
		kvs.WriteByte('\n')
		kvs.Write(kv.Value)
		kvs.WriteByte('\n')
	}
	texts["etcd keys and values (watch and current)"] = kvs.String()
	for _, in := range b.Instances {
		texts[in.ID+"'s outputs and files"] = in.LeakText()
	}
	var hits []string
	for _, s := range secrets {
		for where, text := range texts {
			if strings.Contains(text, s.Value) {
				hits = append(hits, fmt.Sprintf("%s in %s", s.What, where))
			}
		}
		for _, f := range b.Cluster.ScanDataDirs([]byte(s.Value)) {
			hits = append(hits, fmt.Sprintf("%s in etcd's %s", s.What, f))
		}
	}
	return hits
}
