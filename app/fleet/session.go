package fleet

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// session is one lease of this instance and the concurrency.Session built on it. Everything the
// instance holds in etcd lives on it. It ends (ctx) when it is lost or the fleet closes.
type session struct {
	s      *concurrency.Session
	id     clientv3.LeaseID
	ttl    time.Duration // as etcd granted it
	margin time.Duration // how long before the computed expiry the session counts as lost
	ctx    context.Context
	cancel context.CancelFunc
	// until is the earliest moment etcd may let the lease expire (Unix ns): the send time of the
	// last renewal etcd answered, plus the TTL. etcd restarts the lease's TTL when it handles the
	// renewal, which is after it was sent, so the lease is alive at least until then.
	until atomic.Int64
}

// alive reports whether the lease is certainly alive at now, with the margin to spare.
func (s *session) alive(now time.Time) bool {
	return now.Add(s.margin).UnixNano() < s.until.Load()
}

// errLeaseGone: etcd no longer knows the lease (it expired, or was revoked).
var errLeaseGone = errors.New("the session lease expired in etcd")

// renewRetry is how soon a failed renewal is tried again (the lease has its TTL to spare).
const renewRetry = 200 * time.Millisecond

// newSession grants a lease, builds a concurrency.Session on it and registers this instance's
// membership on it.
func (f *Fleet) newSession(ctx context.Context) (*session, error) {
	gctx, cancel := f.opContext(ctx)
	defer cancel()
	sent := time.Now()
	g, err := f.cli.Grant(gctx, int64(f.cfg.LeaseTTL/time.Second))
	if err != nil {
		return nil, fmt.Errorf("grant a lease: %w", err)
	}
	s := &session{id: g.ID, ttl: time.Duration(g.TTL) * time.Second}
	s.margin = s.ttl / 10
	s.until.Store(sent.Add(s.ttl).UnixNano())
	s.ctx, s.cancel = context.WithCancel(f.ctx)
	// The session's own keepalive runs beside renew (etcd merges them); renew is what counts.
	s.s, err = concurrency.NewSession(f.cli, concurrency.WithLease(g.ID), concurrency.WithTTL(int(g.TTL)),
		concurrency.WithContext(s.ctx))
	if err == nil {
		err = f.register(gctx, g.ID)
	}
	if err != nil {
		s.cancel()
		f.revokeLater(g.ID)
		return nil, fmt.Errorf("start the session: %w", err)
	}
	return s, nil
}

// runSessions keeps a session alive, and when it is lost gives up what it held and makes a new one,
// until Close. first is the session Open made.
func (f *Fleet) runSessions(first *session) {
	defer f.wg.Done()
	s := first
	for {
		if !f.install(s) {
			// Close began while the session was being made, and could not revoke it: do it here.
			ctx, cancel := context.WithTimeout(context.Background(), f.cfg.OpTimeout)
			_, _ = f.cli.Revoke(ctx, s.id)
			cancel()
			s.cancel()
			return
		}
		reason := f.keepAlive(s)
		f.uninstall(s, reason)
		var bo backoff
		for s = nil; s == nil; {
			if f.ctx.Err() != nil {
				return
			}
			var err error
			if s, err = f.newSession(f.ctx); err != nil {
				f.cfg.Logf("fleet: new session: %v (retrying)", err)
				if !bo.wait(f.ctx) {
					return
				}
			}
		}
		f.cfg.Logf("fleet: new session started; campaigning again")
	}
}

// install makes s the live session and starts campaigning in it for every joined name; it reports
// false, doing nothing, once Close has begun.
func (f *Fleet) install(s *session) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed && f.sess != s {
		return false
	}
	f.sess = s
	for name := range f.names {
		f.startLocked(name, s)
	}
	return true
}

// uninstall ends s: every election it led is reported lost, its campaigns stop, and its lease is
// revoked in the background (so its candidacies go as soon as etcd answers, not after a TTL that a
// new etcd leader would have extended).
func (f *Fleet) uninstall(s *session, reason string) {
	f.mu.Lock()
	if f.sess == s {
		f.sess = nil
	}
	lost := 0
	for name, r := range f.names {
		if r != nil && r.sess == s && r.leading {
			r.leading = false
			lost++
			f.emitLeader(name, false) // dispatch makes the call; no handler runs under f.mu
		}
	}
	f.mu.Unlock()
	s.cancel()
	s.s.Orphan()
	if f.ctx.Err() != nil {
		return // closing: Close revokes the lease
	}
	f.cfg.Logf("fleet: session lost (%s); gave up %d elections", reason, lost)
	f.revokeLater(s.id)
}

// keepAlive renews s every third of its TTL until it is lost, and says why it was; it returns when the
// fleet closes too.
func (f *Fleet) keepAlive(s *session) string {
	interval := s.ttl / 3
	next := time.Now().Add(interval)
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		deadline := time.Unix(0, s.until.Load()).Add(-s.margin)
		wake := next
		if deadline.Before(wake) {
			wake = deadline
		}
		t.Reset(time.Until(wake))
		select {
		case <-f.ctx.Done():
			return "closed"
		case <-s.s.Done():
			return "the client's keepalive ended"
		case <-t.C:
		}
		if !time.Now().Before(deadline) {
			return fmt.Sprintf("no renewal answered within the lease TTL of %v", s.ttl)
		}
		sent := time.Now()
		ttl, err := f.renew(s)
		switch {
		case errors.Is(err, errLeaseGone):
			return err.Error()
		case err != nil:
			next = time.Now().Add(min(renewRetry, interval))
		default:
			s.until.Store(sent.Add(ttl).UnixNano())
			next = sent.Add(interval)
		}
	}
}

// renew sends one keepalive for s's lease and returns the TTL etcd restarted it with. It uses the raw
// lease RPC, once: the client's KeepAliveOnce retries a member without a leader in a tight loop.
func (f *Fleet) renew(s *session) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(s.ctx), min(f.cfg.OpTimeout, s.ttl/3))
	defer cancel()
	stream, err := f.leases.LeaseKeepAlive(ctx)
	if err != nil {
		return 0, err
	}
	if err := stream.Send(&pb.LeaseKeepAliveRequest{ID: int64(s.id)}); err != nil {
		return 0, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return 0, err
	}
	_ = stream.CloseSend()
	if resp.TTL <= 0 {
		return 0, errLeaseGone
	}
	return time.Duration(resp.TTL) * time.Second, nil
}

// revokeLater revokes a lease in the background, retrying until etcd answers (or the lease is gone,
// or the fleet closes).
func (f *Fleet) revokeLater(id clientv3.LeaseID) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		var bo backoff
		for {
			ctx, cancel := f.opContext(f.ctx)
			_, err := f.cli.Revoke(ctx, id)
			cancel()
			if err == nil || leaseGone(err) || !bo.wait(f.ctx) {
				return
			}
		}
	}()
}

// leaseGone reports whether err says etcd does not know the lease.
func leaseGone(err error) bool {
	return errors.Is(err, rpctypes.ErrLeaseNotFound) || errors.Is(err, rpctypes.ErrGRPCLeaseNotFound)
}
