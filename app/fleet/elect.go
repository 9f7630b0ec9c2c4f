package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/authkeeper/authkeeper/keychain"
)

// run is the campaign for one joined name in one session. A new session (or a Leave and Join) makes
// a new run; a run's goroutine changes the fleet's state only while it is still names[name].
type run struct {
	name   string
	sess   *session
	ctx    context.Context // ends with the session, or at Leave
	cancel context.CancelFunc
	token  string // the serving key's value, so Leave deletes only what this run wrote

	// Guarded by Fleet.mu.
	leading bool
	key     string // the election key, once elected
	rev     int64  // its CreateRevision
}

// errDeposed: this instance's election key disappeared while it led.
var errDeposed = errors.New("the election key was deleted")

// Join campaigns for name's election in the background and marks this instance as serving name.
// Joining a name already joined does nothing; a name keychain.ValidName refuses is ignored (logged).
func (f *Fleet) Join(name string) {
	if err := keychain.ValidName(name); err != nil {
		f.cfg.Logf("fleet: join: %v", err)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	if _, ok := f.names[name]; ok {
		return
	}
	f.names[name] = nil
	if f.sess != nil {
		f.startLocked(name, f.sess)
	}
}

// Leave stops campaigning for name, resigns its election if this instance leads it (reporting
// Leader(name, false)) and stops serving it.
func (f *Fleet) Leave(name string) {
	f.mu.Lock()
	r, ok := f.names[name]
	delete(f.names, name)
	if r != nil && r.leading {
		r.leading = false
		f.emitLeader(name, false)
	}
	f.mu.Unlock()
	if !ok || r == nil {
		return
	}
	r.cancel() // the campaign resigns as it stops
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		ctx, cancel := f.opContext(f.ctx)
		defer cancel()
		key := f.key("serving", name, f.cfg.Instance)
		_, _ = f.cli.Txn(ctx).If(clientv3.Compare(clientv3.Value(key), "=", r.token)).Then(clientv3.OpDelete(key)).Commit()
	}()
}

// Leading reports whether this instance holds name's election now: it was elected in the live session
// and that session's lease is certainly alive (renewed within its TTL, less a margin).
func (f *Fleet) Leading(name string) bool {
	_, _, ok := f.leadership(name)
	return ok
}

// leadership returns this instance's election key for name and its CreateRevision while Leading.
func (f *Fleet) leadership(name string) (string, int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.names[name]
	if r == nil || !r.leading || r.sess != f.sess || !r.sess.alive(time.Now()) {
		return "", 0, false
	}
	return r.key, r.rev, true
}

// startLocked starts name's campaign in session s. Caller holds f.mu.
func (f *Fleet) startLocked(name string, s *session) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	r := &run{name: name, sess: s, token: hex.EncodeToString(b)}
	r.ctx, r.cancel = context.WithCancel(s.ctx)
	f.names[name] = r
	f.wg.Add(2)
	go f.serve(r)
	go f.campaign(r)
}

// current reports whether r is still name's live campaign. Caller holds f.mu.
func (f *Fleet) currentLocked(r *run) bool {
	return f.names[r.name] == r && r.ctx.Err() == nil
}

// campaign serves and campaigns for r.name until r ends: elected, it holds the lead until its key is
// deleted, then campaigns again.
func (f *Fleet) campaign(r *run) {
	defer f.wg.Done()
	e := concurrency.NewElection(r.sess.s, f.key("lead", r.name))
	var bo backoff
	for r.ctx.Err() == nil {
		// On cancellation Campaign resigns by itself (on the client's context).
		if err := e.Campaign(clientv3.WithRequireLeader(r.ctx), f.cfg.Instance); err != nil {
			if r.ctx.Err() == nil {
				f.cfg.Logf("fleet: campaign for %s: %v (retrying)", r.name, err)
				bo.wait(r.ctx)
			}
			continue
		}
		rev, ok := f.elected(r, e)
		if !ok {
			bo.wait(r.ctx)
			continue
		}
		bo.reset()
		err := f.hold(r, e, rev)
		f.mu.Lock()
		if r.leading && f.currentLocked(r) {
			f.cfg.Logf("fleet: lost the lead of %s: %v", r.name, err)
			f.emitLeader(r.name, false)
		}
		r.leading = false
		f.mu.Unlock()
	}
	if f.ctx.Err() == nil {
		// Left, or the session was lost: withdraw, so the next candidate need not wait for the lease.
		// Not e.Resign, which withdraws only after a Campaign that has not failed: a candidacy left
		// behind by a failed one would, once the oldest, block the election for the session's life.
		// The key is named by the lease; should a later run of this name in the same session have
		// created it again meanwhile, that run sees it go and campaigns anew.
		ctx, cancel := f.opContext(f.ctx)
		_, _ = f.cli.Delete(ctx, fmt.Sprintf("%s/%x", f.key("lead", r.name), r.sess.id))
		cancel()
	}
}

// serve writes r's serving key on the session lease, retrying until it is written or r ends.
func (f *Fleet) serve(r *run) {
	defer f.wg.Done()
	var bo backoff
	for {
		ctx, cancel := f.opContext(r.ctx)
		_, err := f.cli.Put(ctx, f.key("serving", r.name, f.cfg.Instance), r.token, clientv3.WithLease(r.sess.id))
		cancel()
		if err == nil || r.ctx.Err() != nil {
			return
		}
		f.cfg.Logf("fleet: mark %s served: %v (retrying)", r.name, err)
		if !bo.wait(r.ctx) {
			return
		}
	}
}

// elected checks, after Campaign returned, that r's election key still stands in a live session, marks
// r leading and reports it. It returns the revision the check read at.
func (f *Fleet) elected(r *run, e *concurrency.Election) (int64, bool) {
	ctx, cancel := f.opContext(r.ctx)
	defer cancel()
	resp, err := f.cli.Get(ctx, e.Key())
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].CreateRevision != e.Rev() {
		return 0, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ok := f.currentLocked(r) && r.sess == f.sess && r.sess.alive(time.Now())
	if ok {
		r.leading, r.key, r.rev = true, e.Key(), e.Rev()
		f.emitLeader(r.name, true)
	}
	return resp.Header.Revision, ok
}

// hold watches r's election key from revision rev on and returns when it is deleted or r ends. A
// broken watch (no leader, compaction) is re-established after checking that the key still stands.
func (f *Fleet) hold(r *run, e *concurrency.Election, rev int64) error {
	var bo backoff
	for {
		ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(r.ctx))
		for wr := range f.cli.Watch(ctx, e.Key(), clientv3.WithRev(rev+1)) {
			if wr.Err() != nil || wr.Canceled {
				break
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					cancel()
					return errDeposed
				}
				rev = ev.Kv.ModRevision
			}
		}
		cancel()
		if !bo.wait(r.ctx) {
			return r.ctx.Err()
		}
		gctx, gcancel := f.opContext(r.ctx)
		resp, err := f.cli.Get(gctx, e.Key())
		gcancel()
		switch {
		case err != nil:
			continue // no answer yet; the session's renewals decide whether the lead is kept
		case len(resp.Kvs) != 1 || resp.Kvs[0].CreateRevision != e.Rev():
			return errDeposed
		default:
			rev = resp.Header.Revision
		}
	}
}
