// Package hook tells someone when a grant needs a human: on a headless fleet nobody sees the tray, so
// on needs-sign-in, revoked, and degraded-for-longer-than-N the hook runs a command and/or POSTs a
// small JSON document (see Document; never token material) to a URL, for on-call tooling such as a
// chat webhook or a pager.
//
// A dead webhook never holds the engine up: Feed only queues, each target (the command, the URL)
// delivers from its own goroutine and bounded queue, which drops the oldest event when full, and a
// failed delivery is retried with backoff a bounded number of times.
package hook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
)

// Defaults of Config's zero fields.
const (
	DefaultTimeout       = 10 * time.Second
	DefaultDegradedAfter = 10 * time.Minute
	DefaultQueueSize     = 64
	DefaultRetries       = 5
)

// Backoff between attempts: 1 s doubling to 1 min, ±20%, and never sooner than a webhook's
// Retry-After — which is itself capped at the maximum, so that one answer cannot park the queue.
var retryBackoff = engine.Backoff{Min: time.Second, Max: time.Minute}

// Config configures a Hook. Command and URL may both be set: each gets every event.
type Config struct {
	// Command is run for each event, as an argument list without a shell: argv[0] is looked up in
	// PATH. The Document is on its stdin, and the environment has AUTHKEEPER_EVENT=<kind> and
	// AUTHKEEPER_SERVER=<name> besides authkeeper's own. Exit status 0 means delivered; its output
	// is discarded. Default: none.
	Command []string
	// URL receives each Document as a POST (Content-Type application/json); a 2xx answer means
	// delivered. https, or http to a loopback host only. Redirects are not followed. Only its scheme
	// and host are ever logged: chat webhooks carry their secret in the path. Default: none.
	URL string
	// Headers are sent with each POST, e.g. a webhook secret. Their values are never logged. Default:
	// none.
	Headers http.Header
	// Timeout bounds one attempt: the command is killed, the request cancelled. It is real time, not
	// Clock's: a fake clock cannot time out a socket or a process. Default DefaultTimeout (10 s).
	Timeout time.Duration
	// DegradedAfter is how long a server stays degraded before the hook fires, once per episode.
	// Default DefaultDegradedAfter (10 min).
	DegradedAfter time.Duration
	// QueueSize is how many events may wait per target while one is being delivered; when full,
	// the oldest is dropped (and counted, and logged). Default DefaultQueueSize (64).
	QueueSize int
	// Retries is how many times a failed delivery is tried again (timeouts, 5xx, 408, 429, a command
	// that fails) before it is given up; other 4xx and 3xx answers are never retried. Negative: no
	// retries. Default DefaultRetries (5).
	Retries int
	// Instance names this authkeeper in the Document. Default: the host name.
	Instance string
	// Clock arms the degraded timers and the backoff. Default engine.SystemClock.
	Clock engine.Clock
	// Rand returns a uniform number in [0, 1) that spreads the backoff. Default math/rand/v2.
	Rand func() float64
	// Logf receives one line per delivery (level info), retry, drop, and event left behind at Close
	// (warn), and give-up (error: someone was not told), prefixed "hook: ". It is called
	// from the delivery goroutines. Default: discard.
	Logf func(level slog.Level, format string, args ...any)
}

// ErrConfig is wrapped by every error New returns.
var ErrConfig = errors.New("event hook")

// Hook turns engine events into deliveries. Safe for concurrent use. A nil *Hook does nothing: its
// Run returns at once and Feed and Close are no-ops, so a caller may wire an unconfigured hook.
type Hook struct {
	cfg    Config
	sinks  []*sink
	ctx    context.Context // cancelled by Close: ends deliveries and backoffs
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu       sync.Mutex
	closed   bool
	episodes map[string]*episode // degraded servers, by name
}

// episode is one stretch of a server being degraded: from its degraded event to the success (or the
// worse news, or the removal) that ends it.
type episode struct {
	since   time.Time // when it began
	message string    // the latest degraded message
	timer   engine.Timer
}

// New validates cfg, fills in its defaults and starts the delivery goroutines; Close stops them.
func New(cfg Config) (*Hook, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	var targets []target
	if len(cfg.Command) > 0 {
		t, err := newCommand(cfg.Command)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		targets = append(targets, t)
	}
	if cfg.URL != "" {
		t, err := newWebhook(cfg.URL, cfg.Headers)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		targets = append(targets, t)
	}
	h := &Hook{cfg: cfg, episodes: map[string]*episode{}}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	for _, t := range targets {
		s := &sink{target: t, cfg: &h.cfg, wake: make(chan struct{}, 1)}
		h.sinks = append(h.sinks, s)
		h.wg.Go(func() { s.loop(h.ctx) })
	}
	return h, nil
}

// fill checks c and sets its defaults.
func (c *Config) fill() error {
	switch {
	case len(c.Command) == 0 && c.URL == "":
		return fmt.Errorf("%w: neither a command nor a URL", ErrConfig)
	case c.Timeout < 0, c.DegradedAfter < 0:
		return fmt.Errorf("%w: negative timeout or degraded_after", ErrConfig)
	case c.QueueSize < 0:
		return fmt.Errorf("%w: negative queue size %d", ErrConfig, c.QueueSize)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.DegradedAfter == 0 {
		c.DegradedAfter = DefaultDegradedAfter
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	c.Retries = max(c.Retries, 0)
	if c.Instance == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("%w: no instance name: %w", ErrConfig, err)
		}
		c.Instance = host
	}
	if c.Clock == nil {
		c.Clock = engine.SystemClock{}
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	if c.Logf == nil {
		c.Logf = func(slog.Level, string, ...any) {}
	}
	return nil
}

// Run feeds every event from events to the hook until ctx is done or events is closed (as the
// engine's hub closes a subscriber that fell behind; Run never does, since Feed does not block). The
// caller may subscribe again and call Run again.
func (h *Hook) Run(ctx context.Context, events <-chan engine.Event) {
	if h == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			h.Feed(ev)
		}
	}
}

// Feed takes one engine event; it never blocks on a delivery. needs_sign_in and revoked are queued at
// once; degraded arms the server's timer (once per episode), which recovered, refreshed,
// deadline_refresh, adopted (a fleet's refresher renewed it), signed_in, signed_out, removed,
// needs_sign_in and revoked disarm. Other kinds
// are ignored, as is everything after Close.
func (h *Hook) Feed(ev engine.Event) {
	if h == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = h.cfg.Clock.Now()
	}
	switch ev.Kind {
	case engine.EventNeedsSignIn, engine.EventRevoked:
		if !h.endEpisode(ev.Server) {
			return
		}
		h.enqueue(newDocument(Kind(ev.Kind), ev.Server, ev.Time, time.Time{}, ev.Message, h.cfg.Instance))
	case engine.EventDegraded:
		h.startEpisode(ev)
	case engine.EventRecovered, engine.EventRefreshed, engine.EventDeadlineRefresh, engine.EventAdopted,
		engine.EventSignedIn, engine.EventSignedOut, engine.EventRemoved:
		h.endEpisode(ev.Server)
	}
}

// startEpisode arms server's degraded timer unless an episode is under way (the engine announces
// degraded once per episode, but a second announcement must not restart the wait).
func (h *Hook) startEpisode(ev engine.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if ep := h.episodes[ev.Server]; ep != nil {
		ep.message = ev.Message
		return
	}
	ep := &episode{since: ev.Time, message: ev.Message}
	ep.timer = h.cfg.Clock.AfterFunc(h.cfg.DegradedAfter, func() { h.degradedTooLong(ev.Server, ep) })
	h.episodes[ev.Server] = ep
}

// degradedTooLong fires when ep has lasted DegradedAfter, unless it ended meanwhile (a timer that
// fires as it is stopped finds its episode gone). The episode stays, with no timer, so that it fires
// once.
func (h *Hook) degradedTooLong(server string, ep *episode) {
	h.mu.Lock()
	if h.closed || h.episodes[server] != ep {
		h.mu.Unlock()
		return
	}
	doc := newDocument(KindDegraded, server, h.cfg.Clock.Now(), ep.since, ep.message, h.cfg.Instance)
	h.mu.Unlock()
	h.enqueue(doc)
}

// endEpisode disarms server's degraded timer; it reports false once the hook is closed.
func (h *Hook) endEpisode(server string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ep := h.episodes[server]; ep != nil {
		ep.timer.Stop()
		delete(h.episodes, server)
	}
	return !h.closed
}

// enqueue hands doc to every target's queue.
func (h *Hook) enqueue(doc Document) {
	body, err := doc.encode()
	if err != nil {
		h.cfg.Logf(slog.LevelError, "hook: cannot encode the %s event for %q: %v", doc.Event, doc.Server, err)
		return
	}
	for _, s := range h.sinks {
		s.push(job{doc: doc, body: body})
	}
}

// Dropped is how many events the queues have dropped since New, over all targets.
func (h *Hook) Dropped() int {
	if h == nil {
		return 0
	}
	n := 0
	for _, s := range h.sinks {
		n += s.droppedTotal()
	}
	return n
}

// Close disarms the degraded timers, cancels the delivery under way, and returns once the delivery
// goroutines have ended; events still queued are logged as not delivered. Feed is a no-op afterwards.
// Safe to call more than once.
func (h *Hook) Close() {
	if h == nil {
		return
	}
	h.once.Do(func() {
		h.mu.Lock()
		h.closed = true
		for name, ep := range h.episodes {
			ep.timer.Stop()
			delete(h.episodes, name)
		}
		h.mu.Unlock()
		h.cancel()
		h.wg.Wait()
		for _, s := range h.sinks {
			s.closeReport()
		}
	})
}
