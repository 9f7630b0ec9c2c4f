//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The client process's jobs (see clientJob). Each fills out, one pathResult per path of the spec.

func latencyJob(ctx context.Context, spec clientSpec, out []pathResult) error {
	ss, err := dialAll(ctx, spec.Paths)
	if err != nil {
		return err
	}
	for _, s := range ss { // warm-up: connections, caches, the JIT of node
		if _, err := callWindow(ctx, []*mcp.ClientSession{s.cs}, 0, spec.Warm); err != nil {
			return errors.Join(s.fail("warm-up", err), closeAll(ss))
		}
	}
	for i := range out {
		out[i].Rounds = make([][]time.Duration, spec.Rounds)
	}
	for r := range spec.Rounds {
		for _, i := range turn(r, len(ss)) {
			lat, err := callWindow(ctx, []*mcp.ClientSession{ss[i].cs}, 0, spec.Slice)
			if err != nil {
				return errors.Join(ss[i].fail(fmt.Sprintf("round %d", r), err), closeAll(ss))
			}
			out[i].Rounds[r] = lat
		}
	}
	for i, s := range ss {
		if s.cmd == nil {
			continue
		}
		rss, hwm, err := s.memory()
		if err != nil {
			return errors.Join(err, closeAll(ss))
		}
		out[i].RSSKiB, out[i].HWMKiB = []int64{rss}, []int64{hwm}
	}
	return closeAll(ss)
}

func startupJob(ctx context.Context, spec clientSpec, out []pathResult) error {
	for _, p := range spec.Paths {
		if !p.stdio() {
			return fmt.Errorf("%s: start-up is measured for stdio paths only", p.Name)
		}
	}
	for r := range spec.Runs {
		for _, i := range turn(r, len(spec.Paths)) {
			s, err := dial(ctx, spec.Paths[i])
			if err != nil {
				return err
			}
			out[i].Startup = append(out[i].Startup, s.connect)
			if err := s.close(); err != nil {
				return err
			}
		}
	}
	return nil
}

func loadJob(ctx context.Context, spec clientSpec, out []pathResult) error {
	for r := range spec.Rounds {
		for _, i := range turn(r, len(spec.Paths)) {
			ss, err := dialMany(ctx, spec.Paths[i], spec.Sessions)
			if err != nil {
				return err
			}
			css := make([]*mcp.ClientSession, len(ss))
			for j, s := range ss {
				css[j] = s.cs
			}
			lat, err := callWindow(ctx, css, spec.Warm, spec.Slice)
			if err != nil {
				return errors.Join(fmt.Errorf("%s: round %d: %w", spec.Paths[i].Name, r, err), closeAll(ss))
			}
			var rss, hwm int64
			for _, s := range ss {
				sr, sh, err := s.memory()
				if err != nil {
					return errors.Join(err, closeAll(ss))
				}
				rss, hwm = rss+sr, hwm+sh
			}
			out[i].Rounds = append(out[i].Rounds, lat)
			out[i].RSSKiB, out[i].HWMKiB = append(out[i].RSSKiB, rss), append(out[i].HWMKiB, hwm)
			if err := closeAll(ss); err != nil {
				return err
			}
		}
	}
	return nil
}

// dialMany connects n sessions over p at once, as n agent sessions starting together would.
func dialMany(ctx context.Context, p pathSpec, n int) ([]*session, error) {
	ss := make([]*session, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ss[i], errs[i] = dial(ctx, p) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		var ok []*session
		for _, s := range ss {
			if s != nil {
				ok = append(ok, s)
			}
		}
		return nil, errors.Join(err, closeAll(ok))
	}
	return ss, nil
}

func callsJob(ctx context.Context, spec clientSpec, out []pathResult) error {
	if len(spec.Paths) != 1 {
		return fmt.Errorf("%d paths: the job takes one", len(spec.Paths))
	}
	s, err := dial(ctx, spec.Paths[0])
	if err != nil {
		return err
	}
	for i := range spec.Calls {
		if _, err := echo(ctx, s.cs); err != nil {
			return errors.Join(s.fail(fmt.Sprintf("call %d", i), err), s.close())
		}
	}
	out[0].Calls = spec.Calls
	return s.close()
}
