package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/authkeeper/authkeeper/keychain"
)

// ask is the value of PREFIX/ask/NAME/ID.
type ask struct {
	Digest string    `json:"digest"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// maxAskField bounds an ask's digest and reason: they name a token and a trigger, nothing longer.
const maxAskField = 128

// Ask asks name's elected instance for a refresh of the token with the given digest (never the token
// itself): it writes PREFIX/ask/NAME/ID on this instance's lease, which the leader's watch reports as
// Handler.Asked. Without a live session, or when etcd does not answer, the error wraps
// keychain.ErrUnavailable.
func (f *Fleet) Ask(name, digest, reason string) error {
	if err := keychain.ValidName(name); err != nil {
		return err
	}
	if len(digest) > maxAskField || len(reason) > maxAskField {
		return fmt.Errorf("fleet: ask %s: digest and reason are limited to %d bytes", name, maxAskField)
	}
	f.mu.Lock()
	s := f.sess
	f.mu.Unlock()
	if s == nil || !s.alive(time.Now()) {
		return fmt.Errorf("fleet: ask %s: %w (no live fleet session: etcd unreachable or without quorum)", name, keychain.ErrUnavailable)
	}
	val, _ := json.Marshal(ask{Digest: digest, Reason: reason, At: time.Now().UTC()})
	ctx, cancel := f.opContext(f.ctx)
	defer cancel()
	if _, err := f.cli.Put(ctx, f.key("ask", name, f.cfg.Instance), string(val), clientv3.WithLease(s.id)); err != nil {
		return opError("ask", name, err)
	}
	return nil
}

// loadRecords reads which records exist (for the watch's resynchronisation) and returns the revision
// the watches start after.
func (f *Fleet) loadRecords(ctx context.Context) (int64, error) {
	ctx, cancel := f.opContext(ctx)
	defer cancel()
	resp, err := f.cli.Get(ctx, f.key("records")+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return 0, err
	}
	for _, kv := range resp.Kvs {
		f.records[strings.TrimPrefix(string(kv.Key), f.key("records")+"/")] = kv.ModRevision
	}
	return resp.Header.Revision, nil
}

// watchRecords reports other instances' writes and deletes of records as Handler.Changed.
func (f *Fleet) watchRecords(rev int64) {
	defer f.wg.Done()
	f.watchPrefix("records", f.key("records")+"/", rev, f.onRecords, f.resyncRecords)
}

// onRecords handles record events.
func (f *Fleet) onRecords(evs []*clientv3.Event) {
	pfx := f.key("records") + "/"
	for _, ev := range evs {
		name := strings.TrimPrefix(string(ev.Kv.Key), pfx)
		rev := ev.Kv.ModRevision
		if ev.Type == mvccpb.DELETE {
			delete(f.records, name)
			if f.deleteSeen(name, rev) {
				f.emitChanged(name, rev)
			}
			continue
		}
		f.records[name] = rev
		var env envelope
		if json.Unmarshal(ev.Kv.Value, &env) == nil && env.Writer == f.cfg.Instance {
			continue // this instance's own write
		}
		f.emitChanged(name, rev)
	}
}

// resyncRecords, after a watch gap etcd compacted away, reports every record that differs from what
// the watch last saw (written, or deleted) and returns the revision to watch after.
func (f *Fleet) resyncRecords() (int64, error) {
	old := f.records
	f.records = map[string]int64{}
	rev, err := f.loadRecords(f.ctx)
	if err != nil {
		f.records = old
		return 0, err
	}
	for name, r := range f.records {
		if old[name] != r {
			f.emitChanged(name, r)
		}
	}
	for name := range old {
		if _, ok := f.records[name]; !ok {
			f.emitChanged(name, rev)
		}
	}
	return rev, nil
}

// watchAsks reports asks for names this instance leads as Handler.Asked.
func (f *Fleet) watchAsks(rev int64) {
	defer f.wg.Done()
	pfx := f.key("ask") + "/"
	f.watchPrefix("asks", pfx, rev, func(evs []*clientv3.Event) {
		for _, ev := range evs {
			name, from, ok := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), pfx), "/")
			if ev.Type != mvccpb.PUT || !ok || from == f.cfg.Instance || !f.Leading(name) {
				continue
			}
			var a ask
			if json.Unmarshal(ev.Kv.Value, &a) != nil {
				continue
			}
			f.emit(func(h Handler) {
				if h.Asked != nil {
					h.Asked(name, a.Digest, a.Reason)
				}
			})
		}
	}, func() (int64, error) {
		// Asks lost in a compacted gap are not replayed: an asker whose token still needs a refresh
		// asks again.
		ctx, cancel := f.opContext(f.ctx)
		defer cancel()
		resp, err := f.cli.Get(ctx, pfx, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return 0, err
		}
		return resp.Header.Revision, nil
	})
}

// watchPrefix watches every key under prefix after revision rev until Close, handing each batch of
// events to on. The watch requires a leader, so a member that lost quorum ends it; it is then resumed
// after the last revision seen, and when etcd has compacted that away, resync reports what may have
// been missed and says where to resume.
func (f *Fleet) watchPrefix(what, prefix string, rev int64, on func([]*clientv3.Event), resync func() (int64, error)) {
	var bo backoff
	for f.ctx.Err() == nil {
		ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(f.ctx))
		compacted := false
		var werr error
		for wr := range f.cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
			if wr.CompactRevision != 0 {
				compacted = true
				break
			}
			if werr = wr.Err(); werr != nil || wr.Canceled {
				break
			}
			if len(wr.Events) > 0 {
				on(wr.Events)
				rev = max(rev, wr.Events[len(wr.Events)-1].Kv.ModRevision)
				bo.reset()
			}
		}
		cancel()
		if f.ctx.Err() != nil {
			return
		}
		if compacted {
			r, err := resync()
			if err == nil {
				f.cfg.Logf("fleet: %s watch: revisions compacted; resynchronised at %d", what, r)
				rev = r
				continue
			}
			werr = err
		}
		f.cfg.Logf("fleet: %s watch ended (%v); resuming after revision %d", what, werr, rev)
		bo.wait(f.ctx)
	}
}
