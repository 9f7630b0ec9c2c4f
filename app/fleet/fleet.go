package fleet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/authkeeper/authkeeper/keychain"
)

// Fleet is one authkeeper instance's membership in a fleet: a keychain.Store over etcd, the elections
// of the grants it joined, and the watches that report what other instances did. Safe for concurrent
// use.
type Fleet struct {
	cfg     Config
	cli     *clientv3.Client
	leases  pb.LeaseClient // raw lease RPCs: renew measures each keepalive itself (session.go)
	ctx     context.Context
	cancel  context.CancelFunc // ends ctx: Close
	wg      sync.WaitGroup
	me      Member
	events  queue
	records map[string]int64 // record name → ModRevision, as the records watch last saw it; its own

	mu      sync.Mutex
	handler Handler
	sess    *session        // the live session; nil between a loss and the next one
	names   map[string]*run // joined names → their campaign in the live session
	closed  bool
	deletes deleteTracker // own deletes, so the records watch does not report them
}

// Handler receives what the fleet observes. Its funcs are called one at a time, in order, from one
// goroutine of the fleet, and must not block (hand off to another goroutine). A nil func is skipped.
// None is called once Close has begun.
type Handler struct {
	// Changed: another instance wrote or deleted name's record, at etcd revision rev. Never called for
	// this instance's own writes. After a watch gap etcd could not replay (compaction) it is called for
	// every name that differs, so a reader re-reads.
	Changed func(name string, rev uint64)
	// Leader: this instance won (true) or lost (false) name's election. Lost includes the session's
	// lease running out unrenewed (no quorum), Leave, and the election key disappearing.
	Leader func(name string, leading bool)
	// Asked, on the elected instance only: a follower asks for a refresh of the token whose digest is
	// given; reason is its trigger.
	Asked func(name, digest, reason string)
}

// Open connects to the cluster, checks that it answers with a leader within DialTimeout (an error
// wrapping keychain.ErrUnavailable if not; etcd's own error, such as a failed login, otherwise), creates this instance's session lease and registers its
// membership on it. ctx bounds only this start; the fleet lives until Close.
func Open(ctx context.Context, cfg Config) (*Fleet, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		TLS:         cfg.TLS,
		Username:    cfg.Username,
		Password:    cfg.Password,
		DialTimeout: cfg.DialTimeout,
		Logger:      zap.NewNop(),
	})
	if err != nil { // with a user name, New logs in at once
		return nil, connectError(cfg, err)
	}
	host, _ := os.Hostname()
	f := &Fleet{
		cfg:     cfg,
		cli:     cli,
		leases:  pb.NewLeaseClient(cli.ActiveConnection()),
		me:      Member{ID: cfg.Instance, Host: host, PID: os.Getpid(), Started: time.Now().UTC(), Version: cfg.Version},
		events:  queue{wake: make(chan struct{}, 1)},
		records: map[string]int64{},
		names:   map[string]*run{},
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	start, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	rev, err := f.loadRecords(start)
	if err == nil {
		err = f.claimInstance(ctx) // may wait out a previous run's lease: not within start's bound
	}
	if err == nil {
		session, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
		f.sess, err = f.newSession(session)
		cancel()
	}
	if err != nil {
		f.cancel()
		f.wg.Wait() // a revocation newSession started gives up with f.ctx
		_ = cli.Close()
		if errors.Is(err, ErrInstanceInUse) {
			return nil, err
		}
		return nil, connectError(cfg, err)
	}
	f.wg.Add(4)
	go f.dispatch()
	go f.runSessions(f.sess)
	go f.watchRecords(rev)
	go f.watchAsks(rev)
	return f, nil
}

// connectError explains why Open could not start: no answer (wrapping keychain.ErrUnavailable), or
// etcd's refusal (a failed login, a missing permission).
func connectError(cfg Config, err error) error {
	if unavailable(err) {
		return fmt.Errorf("fleet: no etcd member of %v answered with a leader within %v: %w (%w)",
			cfg.Endpoints, cfg.DialTimeout, keychain.ErrUnavailable, err)
	}
	return fmt.Errorf("fleet: etcd at %v: %w", cfg.Endpoints, err)
}

// Instance is this instance's id in the fleet.
func (f *Fleet) Instance() string { return f.cfg.Instance }

// SetHandler sets the callbacks. Call it before the first Join, so no election result is missed.
func (f *Fleet) SetHandler(h Handler) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handler = h
}

// Close leaves the fleet: it stops the fleet's goroutines and handler calls, revokes the session lease
// — which deletes this instance's membership, serving keys and election candidacies at once, so
// another instance takes over every election it led without waiting for the TTL — and closes the
// client. When etcd does not answer, the lease expires by itself after LeaseTTL. Idempotent.
func (f *Fleet) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	s := f.sess
	f.mu.Unlock()
	f.cancel()
	var err error
	if s != nil {
		ctx, cancel := context.WithTimeout(context.Background(), f.cfg.OpTimeout)
		if _, rerr := f.cli.Revoke(ctx, s.id); rerr != nil && !leaseGone(rerr) {
			err = fmt.Errorf("fleet: revoke the session lease (it expires within %v): %w", s.ttl, rerr)
		}
		cancel()
	}
	// An election's Campaign, cancelled, resigns on the client's own context: bound the wait, then
	// close the client, which ends that context.
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(f.cfg.OpTimeout):
	}
	if cerr := f.cli.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("fleet: close the etcd client: %w", cerr)
	}
	<-done
	return err
}

// key returns PREFIX/kind/parts... .
func (f *Fleet) key(kind string, parts ...string) string {
	k := f.cfg.Prefix + "/" + kind
	for _, p := range parts {
		k += "/" + p
	}
	return k
}

// opContext is a context for one request: OpTimeout, failing at once on a member without a leader.
func (f *Fleet) opContext(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(clientv3.WithRequireLeader(parent), f.cfg.OpTimeout)
}

// queue holds handler calls in order until dispatch makes them.
type queue struct {
	mu    sync.Mutex
	calls []func(Handler)
	wake  chan struct{} // capacity 1: "there is something"
}

// emit queues a handler call; it never blocks, and may be called with f.mu held (which keeps the
// order of Leader calls that of the state changes).
func (f *Fleet) emit(call func(Handler)) {
	f.events.mu.Lock()
	f.events.calls = append(f.events.calls, call)
	f.events.mu.Unlock()
	select {
	case f.events.wake <- struct{}{}:
	default:
	}
}

// dispatch makes the queued handler calls, in order, until Close.
func (f *Fleet) dispatch() {
	defer f.wg.Done()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-f.events.wake:
		}
		f.events.mu.Lock()
		calls := f.events.calls
		f.events.calls = nil
		f.events.mu.Unlock()
		f.mu.Lock()
		h := f.handler
		f.mu.Unlock()
		for _, call := range calls {
			if f.ctx.Err() != nil {
				return
			}
			call(h)
		}
	}
}

func (f *Fleet) emitChanged(name string, rev int64) {
	f.emit(func(h Handler) {
		if h.Changed != nil {
			h.Changed(name, uint64(rev))
		}
	})
}

func (f *Fleet) emitLeader(name string, leading bool) {
	f.emit(func(h Handler) {
		if h.Leader != nil {
			h.Leader(name, leading)
		}
	})
}

// backoff spaces retries against a cluster that does not answer: 100 ms doubling to 2 s.
type backoff struct{ d time.Duration }

// wait sleeps for the next delay and reports whether ctx is still live afterwards.
func (b *backoff) wait(ctx context.Context) bool {
	b.d = min(max(2*b.d, 100*time.Millisecond), 2*time.Second)
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (b *backoff) reset() { b.d = 0 }
