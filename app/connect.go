package app

import (
	"context"
	"errors"
	"fmt"
	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"time"
)

// connect returns a client of the owner. When no owner answers, this process becomes the owner: it
// starts the engine for as long as the command runs — its proxy on a free loopback port, since the
// stable port belongs to the app — serving the control API (a unix socket; on Windows a named pipe)
// so that other processes started meanwhile share it. Either way exactly one process refreshes.
// The returned func stops an engine this process started.
//
// The engine it starts is temporary (see Config.Temporary): when the app or `serve` starts, it takes
// over, and onHandover (if not nil) is called as this process stops owning.
func connect(ctx context.Context, e env, store string, onHandover func()) (*control.Remote, func(), error) {
	return connectAfter(ctx, e, store, onHandover, 0)
}

// connectAfter is connect, but it first waits up to wait for an owner to answer before it tries to
// own: a process that has just handed over gives the app the time to start.
func connectAfter(ctx context.Context, e env, store string, onHandover func(), wait time.Duration) (*control.Remote, func(), error) {
	paths, err := engine.DefaultPaths(e.getenv)
	if err != nil {
		return nil, nil, err
	}
	// An answer that is not the user's own (control.ErrNotYours: on Windows a pipe someone else created
	// at a name an owner recorded before it died) does not stop this process from owning: if the lock
	// is free, it listens on a new name of its own and records it.
	if r, err := awaitOwner(ctx, paths, wait); err == nil {
		return r, func() {}, nil
	}
	eng, err := newEngine(engine.Config{Paths: paths, ProxyAddr: "127.0.0.1:0", Version: Version, StoreKind: store,
		Temporary: true, OnHandover: onHandover, OpenFleet: fleetOpener(e, fleetOpts{})})
	if err != nil {
		return nil, nil, err
	}
	err = eng.Start(ctx)
	// Another process won the race to own, or is handing over: wait for its control API. Should the
	// lock come free with no one answering (an owner that died while starting, or a `status` that
	// looked at the lock in that instant, see engine.OwnerLockHeld), own after all.
	for deadline := time.Now().Add(10 * time.Second); errors.Is(err, engine.ErrNotOwner); err = eng.Start(ctx) {
		r, rerr := reach(ctx, paths)
		if rerr == nil {
			return r, func() {}, nil
		}
		if errors.Is(rerr, control.ErrNotYours) {
			// The lock is held, yet what answers at the recorded address is not the user's: stop at
			// once rather than send it anything or wait for an owner that will not answer there.
			return nil, nil, fmt.Errorf("%w, but what answers at its control address is not yours: %w", engine.ErrNotOwner, rerr)
		}
		if !time.Now().Before(deadline) {
			return nil, nil, fmt.Errorf("%w, but it does not answer on %s", engine.ErrNotOwner, engine.OwnerSocket(paths))
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(50 * time.Millisecond): // polling the other process's control API and lock
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if w := eng.Warning(); w != "" {
		fmt.Fprintln(e.stderr, "authkeeper: warning:", w)
	}
	fmt.Fprintln(e.stderr, "authkeeper: no engine was running; this process owns the credentials until it exits")
	return control.NewRemote(eng.ControlAddr()), func() { eng.Close() }, nil
}

// awaitOwner returns a client of the running owner, asking until one answers or wait has passed (at
// least once).
func awaitOwner(ctx context.Context, paths engine.Paths, wait time.Duration) (*control.Remote, error) {
	deadline := time.Now().Add(wait)
	for {
		r, err := reach(ctx, paths)
		if err == nil || !time.Now().Before(deadline) {
			return r, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond): // polling the other process's control API
		}
	}
}

// reach returns a client of the running owner, or an error when none answers. It never starts one.
func reach(ctx context.Context, paths engine.Paths) (*control.Remote, error) {
	r := control.NewRemote(engine.OwnerSocket(paths))
	if _, err := r.Health(ctx); err != nil {
		return nil, err
	}
	return r, nil
}
