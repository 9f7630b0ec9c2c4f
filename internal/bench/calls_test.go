//go:build linux

package bench

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// echo calls the server's echo tool once over cs and returns the call's latency: from CallTool to its
// result.
func echo(ctx context.Context, cs *mcp.ClientSession) (time.Duration, error) {
	params := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}}
	t0 := time.Now()
	res, err := cs.CallTool(ctx, params)
	d := time.Since(t0)
	if err != nil {
		return 0, err
	}
	if res.IsError {
		return 0, errors.New("echo answered with an error result")
	}
	return d, nil
}

// callWindow has every session call echo back to back, all at once, first for warm and then for d.
// It returns the latency of every call started within d (a call still running at its end is waited
// for and kept), unsorted, and the first error; after an error each session stops at its next call.
func callWindow(ctx context.Context, sessions []*mcp.ClientSession, warm, d time.Duration) ([]time.Duration, error) {
	start := time.Now()
	from, until := start.Add(warm), start.Add(warm+d)
	var (
		mu     sync.Mutex
		lat    []time.Duration
		first  error
		failed atomic.Bool
		wg     sync.WaitGroup
	)
	for _, cs := range sessions {
		wg.Go(func() {
			var mine []time.Duration
			for !failed.Load() {
				t0 := time.Now()
				if !t0.Before(until) {
					break
				}
				l, err := echo(ctx, cs)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					failed.Store(true)
					return
				}
				if !t0.Before(from) {
					mine = append(mine, l)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return lat, first
}
