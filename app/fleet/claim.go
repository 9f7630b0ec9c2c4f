package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrInstanceInUse means another live instance of the fleet has this instance's id. Two instances
// with one id would hide each other's writes and asks (each takes the other's for its own), so the
// second refuses to start.
var ErrInstanceInUse = errors.New("another instance of the fleet uses this instance id")

// claimPoll is how often claimInstance looks whether a previous holder's membership has expired.
const claimPoll = 200 * time.Millisecond

// claimInstance waits until no live instance holds this instance's id: a previous run of this
// instance (a restart, a crash) leaves its membership until its lease expires, within LeaseTTL; a
// membership that outlives that belongs to another live instance, and Open fails naming it.
func (f *Fleet) claimInstance(ctx context.Context) error {
	key := f.key("members", f.cfg.Instance)
	deadline := time.Now().Add(f.cfg.LeaseTTL + time.Second)
	for {
		op, cancel := f.opContext(f.ctx)
		resp, err := f.cli.Get(op, key)
		cancel()
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var m Member
			_ = json.Unmarshal(resp.Kvs[0].Value, &m)
			return fmt.Errorf("fleet: %w: %q is held by the instance on host %q (pid %d, started %s); give each instance "+
				"its own --instance (or $AUTHKEEPER_INSTANCE)", ErrInstanceInUse, f.cfg.Instance, m.Host, m.PID,
				m.Started.Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.ctx.Done():
			return f.ctx.Err()
		case <-time.After(claimPoll):
		}
	}
}

// register writes this instance's membership on lease: only if no instance holds the id, or if the
// holder is this very process (a membership of its previous session, whose lease has not expired yet).
// Two processes with one id that got past claimInstance together are told apart here.
func (f *Fleet) register(ctx context.Context, lease clientv3.LeaseID) error {
	key := f.key("members", f.cfg.Instance)
	me, _ := json.Marshal(f.me)
	resp, err := f.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(me), clientv3.WithLease(lease))).
		Else(clientv3.OpGet(key)).Commit()
	if err != nil || resp.Succeeded {
		return err
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) > 0 && string(kvs[0].Value) != string(me) {
		var m Member
		_ = json.Unmarshal(kvs[0].Value, &m)
		return fmt.Errorf("fleet: %w: %q is held by the instance on host %q (pid %d); give each instance its own --instance "+
			"(or $AUTHKEEPER_INSTANCE)", ErrInstanceInUse, f.cfg.Instance, m.Host, m.PID)
	}
	_, err = f.cli.Put(ctx, key, string(me), clientv3.WithLease(lease)) // this process's own, moved to the new lease
	return err
}
