package hook

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// target is where documents go: the command or the webhook.
type target interface {
	// deliver makes one attempt; ctx bounds it. An error wrapping errPermanent is not retried, one
	// that is a *retryAfterError asks for a minimum wait.
	deliver(ctx context.Context, doc Document, body []byte) error
	// String names the target in log lines; it holds no secret.
	String() string
}

// errPermanent marks a failure that another attempt cannot fix (a 4xx other than 408 and 429, a
// redirect).
var errPermanent = errors.New("not retried")

// retryAfterError is a retryable failure whose answer said when to try again.
type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// job is one document on its way to one target.
type job struct {
	doc  Document
	body []byte
}

// sink is one target's bounded queue and the goroutine that empties it, so that a target that hangs
// delays only its own deliveries. Safe for concurrent use.
type sink struct {
	target target
	cfg    *Config       // the Hook's, filled in; read-only
	wake   chan struct{} // buffered 1: a push since the loop last looked

	mu      sync.Mutex
	queue   []job
	dropped int // since the loop last logged them
	total   int // since New
}

// push queues j, dropping the oldest waiting job when the queue is full. It never blocks.
func (s *sink) push(j job) {
	s.mu.Lock()
	if len(s.queue) >= s.cfg.QueueSize {
		copy(s.queue, s.queue[1:])
		s.queue = s.queue[:len(s.queue)-1]
		s.dropped++
		s.total++
	}
	s.queue = append(s.queue, j)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pop takes the oldest job, with the number dropped since the last pop.
func (s *sink) pop() (j job, dropped int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dropped, s.dropped = s.dropped, 0
	if len(s.queue) == 0 {
		return job{}, dropped, false
	}
	j = s.queue[0]
	s.queue = s.queue[1:]
	return j, dropped, true
}

func (s *sink) droppedTotal() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// loop delivers jobs one at a time until ctx is done. Drops are logged here, once per burst, rather
// than in push: Feed runs on the engine's side and should not write a line per lost event.
func (s *sink) loop(ctx context.Context) {
	for {
		j, dropped, ok := s.pop()
		if dropped > 0 {
			s.cfg.Logf(slog.LevelWarn, "hook: dropped %d events for %s: its queue of %d was full", dropped, s.target, s.cfg.QueueSize)
		}
		if !ok {
			select {
			case <-s.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		s.send(ctx, j)
		if ctx.Err() != nil {
			return
		}
	}
}

// send delivers j, retrying with backoff, and logs the outcome.
func (s *sink) send(ctx context.Context, j job) {
	what, tries := j.doc.Event, s.cfg.Retries+1
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		err := s.target.deliver(actx, j.doc, j.body)
		cancel()
		switch {
		case err == nil:
			s.cfg.Logf(slog.LevelInfo, "hook: delivered the %s event for %q to %s", what, j.doc.Server, s.target)
			return
		case ctx.Err() != nil:
			s.cfg.Logf(slog.LevelWarn, "hook: the %s event for %q was not delivered to %s: authkeeper is stopping", what, j.doc.Server, s.target)
			return
		case errors.Is(err, errPermanent):
			s.cfg.Logf(slog.LevelError, "hook: %s refused the %s event for %q: %v", s.target, what, j.doc.Server, err)
			return
		case attempt >= tries:
			s.cfg.Logf(slog.LevelError, "hook: gave up on the %s event for %q after %d attempts to %s: %v", what, j.doc.Server, attempt, s.target, err)
			return
		}
		var ra *retryAfterError
		var after time.Duration
		if errors.As(err, &ra) {
			after = min(ra.after, retryBackoff.Max)
		}
		d := retryBackoff.Delay(attempt-1, after, s.cfg.Rand())
		s.cfg.Logf(slog.LevelWarn, "hook: %s: the %s event for %q failed (attempt %d of %d): %v; retrying in %s",
			s.target, what, j.doc.Server, attempt, tries, err, d.Round(time.Millisecond))
		if !s.sleep(ctx, d) {
			s.cfg.Logf(slog.LevelWarn, "hook: the %s event for %q was not delivered to %s: authkeeper is stopping", what, j.doc.Server, s.target)
			return
		}
	}
}

// sleep waits d on the Clock; false if ctx ended first.
func (s *sink) sleep(ctx context.Context, d time.Duration) bool {
	done := make(chan struct{})
	t := s.cfg.Clock.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return true
	case <-ctx.Done():
		t.Stop()
		return false
	}
}

// closeReport logs the jobs Close left undelivered (the one under way is not counted).
func (s *sink) closeReport() {
	s.mu.Lock()
	n, dropped := len(s.queue), s.dropped
	s.queue, s.dropped = nil, 0
	s.mu.Unlock()
	if dropped > 0 {
		s.cfg.Logf(slog.LevelWarn, "hook: dropped %d events for %s: its queue of %d was full", dropped, s.target, s.cfg.QueueSize)
	}
	if n > 0 {
		s.cfg.Logf(slog.LevelWarn, "hook: %d events not delivered to %s: authkeeper is stopping", n, s.target)
	}
}
