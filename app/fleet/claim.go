package fleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
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
func (f *Fleet) claimInstance() error {
	key := f.key("members", f.cfg.Instance)
	deadline := time.Now().Add(f.cfg.LeaseTTL + time.Second)
	for {
		ctx, cancel := f.opContext(f.ctx)
		resp, err := f.cli.Get(ctx, key)
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
		case <-f.ctx.Done():
			return f.ctx.Err()
		case <-time.After(claimPoll):
		}
	}
}
