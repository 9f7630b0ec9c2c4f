package app

import (
	"context"
	"errors"
	"fmt"
	"github.com/authkeeper/authkeeper/app/bridge"
	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"io"
	"os"
	"runtime/pprof"
	"sync"
	"time"
)

// cmdBridge runs `authkeeper bridge NAME`: MCP over stdin/stdout to the client, Streamable HTTP through
// the owner's proxy to the server. Only MCP messages go to stdout; diagnostics go to stderr.
func cmdBridge(ctx context.Context, args []string, e env, stdin io.ReadCloser) error {
	fs := newFlags("bridge", e)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: authkeeper bridge NAME")
	}
	name := pos[0]
	if path := e.getenv(envCPUProfile); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			return fmt.Errorf("bridge: %s: %w", envCPUProfile, err)
		}
		defer stop()
	}
	owner := &ownerLink{e: e}
	defer owner.close()
	r, err := owner.remote(ctx, false)
	if err != nil {
		return err
	}
	// Fail before speaking MCP when the name is wrong: the client shows this line from stderr.
	s, err := r.Status(ctx)
	if err != nil {
		return err
	}
	if !hasServer(s, name) {
		return fmt.Errorf("bridge: %q: %w (see `authkeeper status`)", name, engine.ErrUnknownServer)
	}
	b, err := bridge.NewBridge(bridge.BridgeConfig{Server: name, In: stdin, Out: nopWriteCloser{e.stdout}, Resolve: owner.proxy, Log: e.stderr})
	if err != nil {
		return err
	}
	return b.Run(ctx)
}

// envCPUProfile names a file the bridge writes a Go CPU profile to, from its start to its end: how
// `make bench` shows where a bridge's time goes (go tool pprof).
const envCPUProfile = "AUTHKEEPER_CPU_PROFILE"

// startCPUProfile starts a CPU profile written to path; stop ends it and closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func hasServer(s engine.Snapshot, name string) bool {
	for _, st := range s.Servers {
		if st.Name == name {
			return true
		}
	}
	return false
}

// ownerLink is a command's way to the owner. If no owner runs, the command becomes the owner for its
// lifetime (see connect); if the owner goes away later, the next call finds the new one or becomes it,
// so bridges started together converge on one owner and survive the app quitting. Safe for concurrent
// use.
type ownerLink struct {
	e env

	mu         sync.Mutex
	r          *control.Remote
	stops      []func() // engines this process started
	handedOver bool     // an engine of ours handed over to the app: look for it before owning again
}

// remote returns a client of the owner; with renew, it looks for the owner again first.
func (o *ownerLink) remote(ctx context.Context, renew bool) (*control.Remote, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.r != nil && !renew {
		return o.r, nil
	}
	wait := time.Duration(0)
	if o.handedOver {
		wait = handoverWait
	}
	r, stop, err := connectAfter(ctx, o.e, "", o.onHandover, wait)
	if err != nil {
		return nil, err
	}
	o.handedOver = false // the next owner change is a new one
	o.r = r
	o.stops = append(o.stops, stop)
	return r, nil
}

// handoverWait is how long a process that handed over waits for the app to answer before it owns
// again (the app gave up, or crashed while starting).
const handoverWait = 10 * time.Second

// onHandover is the temporary engine's Config.OnHandover.
func (o *ownerLink) onHandover() {
	o.mu.Lock()
	o.handedOver = true
	o.mu.Unlock()
}

// proxy is a BridgeConfig.Resolve.
func (o *ownerLink) proxy(ctx context.Context, renew bool) (control.ProxyInfo, error) {
	r, err := o.remote(ctx, renew)
	if err != nil {
		return control.ProxyInfo{}, err
	}
	return r.Proxy(ctx)
}

// close stops any engine this process started.
func (o *ownerLink) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, stop := range o.stops {
		stop()
	}
	o.stops = nil
}

// nopWriteCloser keeps the SDK's connection from closing the process's stdout.
type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
