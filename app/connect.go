package app

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// connect returns a client of the owner. When no owner answers, this process becomes the owner: it
// starts the engine for as long as the command runs — its proxy on a free loopback port, since the
// stable port belongs to the app — serving the control socket so that other processes started
// meanwhile share it. Either way exactly one process refreshes.
// The returned func stops an engine this process started.
func connect(ctx context.Context, e env, store string) (*Remote, func(), error) {
	paths, err := DefaultPaths(e.getenv)
	if err != nil {
		return nil, nil, err
	}
	if r, err := reach(ctx, paths); err == nil {
		return r, func() {}, nil
	}
	eng, err := NewEngine(Config{Paths: paths, ProxyAddr: "127.0.0.1:0", Version: Version, StoreKind: store})
	if err != nil {
		return nil, nil, err
	}
	err = eng.Start(ctx)
	if errors.Is(err, ErrNotOwner) {
		// Another process won the race to own; wait for its socket.
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if r, err := reach(ctx, paths); err == nil {
				return r, func() {}, nil
			}
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		return nil, nil, fmt.Errorf("%w, but it does not answer on %s", ErrNotOwner, ownerSocket(paths))
	}
	if err != nil {
		return nil, nil, err
	}
	if w := eng.Warning(); w != "" {
		fmt.Fprintln(e.stderr, "authkeeper: warning:", w)
	}
	fmt.Fprintln(e.stderr, "authkeeper: no engine was running; this process owns the credentials until it exits")
	return NewRemote(paths.ControlSocket()), func() { eng.Close() }, nil
}

// reach returns a client of the running owner, or an error when none answers. It never starts one.
func reach(ctx context.Context, paths Paths) (*Remote, error) {
	r := NewRemote(ownerSocket(paths))
	if _, err := r.Health(ctx); err != nil {
		return nil, err
	}
	return r, nil
}
