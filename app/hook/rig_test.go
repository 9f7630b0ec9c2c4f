package hook

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
)

// The rig of the hook's tests: a fake clock (the backoff and the degraded timers run on it; the test
// moves it), a log recorder (the log lines are also where a test learns that an attempt ended), and a
// real HTTP server on loopback as the webhook.

// waitLimit is how long a test waits for something the hook does on its own goroutine before it fails;
// nothing here takes more than milliseconds when the hook works.
const waitLimit = 10 * time.Second

// epoch is the fake clock's start.
var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is an engine.Clock whose time moves only in Advance, which runs the timers that fall due
// before it returns.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer  // armed, in arming order
	changed chan struct{} // closed (and replaced) whenever timers changes
}

type fakeTimer struct {
	c  *fakeClock
	at time.Time
	d  time.Duration
	f  func()
}

var _ engine.Clock = (*fakeClock)(nil)

func newFakeClock() *fakeClock { return &fakeClock{now: epoch, changed: make(chan struct{})} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) engine.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), d: d, f: f}
	c.timers = append(c.timers, t)
	c.notifyLocked()
	return t
}

func (t *fakeTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.timers, t)
	if i < 0 {
		return false
	}
	c.timers = slices.Delete(c.timers, i, i+1)
	c.notifyLocked()
	return true
}

func (c *fakeClock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Advance moves the clock by d and runs the timers due by then, earliest first, before returning.
func (c *fakeClock) Advance(d time.Duration) { c.advanceHolding(d)() }

// advanceHolding is Advance, except that the timers due are only taken off (their Stop now reports
// false) and run when the returned func is called: a timer that has fired but whose call has not
// run yet, as a real one can be.
func (c *fakeClock) advanceHolding(d time.Duration) (run func()) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool {
		if !t.at.After(c.now) {
			due = append(due, t)
			return true
		}
		return false
	})
	c.notifyLocked()
	c.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *fakeTimer) int { return a.at.Compare(b.at) })
	return func() {
		for _, t := range due {
			t.f()
		}
	}
}

// pending is the durations the armed timers were armed with.
func (c *fakeClock) pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ds []time.Duration
	for _, t := range c.timers {
		ds = append(ds, t.d)
	}
	return ds
}

// waitPending waits until n timers are armed and returns their durations.
func (c *fakeClock) waitPending(t *testing.T, n int) []time.Duration {
	t.Helper()
	limit := time.After(waitLimit)
	for {
		c.mu.Lock()
		if len(c.timers) >= n {
			c.mu.Unlock()
			return c.pending()
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-limit:
			t.Fatalf("waited %s for %d armed timers; armed: %v", waitLimit, n, c.pending())
		}
	}
}

// logRecorder is a Config.Logf that keeps every line.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
	next  chan string
}

func newLogRecorder() *logRecorder { return &logRecorder{next: make(chan string, 1000)} }

func (l *logRecorder) logf(level slog.Level, format string, args ...any) {
	line := level.String() + " " + fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	l.next <- line
}

// waitFor returns the next line holding want, skipping the lines before it.
func (l *logRecorder) waitFor(t *testing.T, want string) string {
	t.Helper()
	limit := time.After(waitLimit)
	for {
		select {
		case line := <-l.next:
			if strings.Contains(line, want) {
				return line
			}
		case <-limit:
			t.Fatalf("no log line with %q within %s; lines: %q", want, waitLimit, l.all())
		}
	}
}

// nextLine returns the next line, whatever it says.
func (l *logRecorder) nextLine(t *testing.T) string {
	t.Helper()
	select {
	case line := <-l.next:
		return line
	case <-time.After(waitLimit):
		t.Fatalf("no log line within %s; lines: %q", waitLimit, l.all())
		return ""
	}
}

func (l *logRecorder) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// received is one POST the webhook got.
type received struct {
	doc    map[string]any
	header http.Header
}

// receiver is a real HTTP server on loopback standing in for a chat webhook or a pager.
type receiver struct {
	srv *httptest.Server
	got chan received
}

// newReceiver starts a webhook that answers request n (from 0) with answer(n, w) — which writes the
// status, and may first set headers or block.
func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{got: make(chan received, 100)}
	var mu sync.Mutex
	n := 0
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := n
		n++
		mu.Unlock()
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost {
			t.Errorf("webhook: %s, body error %v", r.Method, err)
		}
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Errorf("webhook: the body %q is not JSON: %v", body, err)
		}
		rc.got <- received{doc: doc, header: r.Header.Clone()}
		answer(i, w, r)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// status answers every request with code.
func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// next is the next POST the webhook got.
func (rc *receiver) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-rc.got:
		return r
	case <-time.After(waitLimit):
		t.Fatalf("the webhook got nothing within %s", waitLimit)
		return received{}
	}
}

// what is a received document's event and server, "needs_sign_in github".
func (r received) what() string { return fmt.Sprint(r.doc["event"], " ", r.doc["server"]) }

// rig is a hook on a fake clock posting to a receiver.
type rig struct {
	h     *Hook
	clock *fakeClock
	logs  *logRecorder
	rc    *receiver
}

// newRig starts a hook posting to a new receiver; change, if not nil, edits the config first.
func newRig(t *testing.T, answer func(int, http.ResponseWriter, *http.Request), change func(*Config)) *rig {
	t.Helper()
	r := &rig{clock: newFakeClock(), logs: newLogRecorder(), rc: newReceiver(t, answer)}
	cfg := Config{URL: r.rc.srv.URL + "/hook", Instance: "runner-7", Clock: r.clock, Logf: r.logs.logf,
		Rand: func() float64 { return 0.5 }} // no jitter: the backoff is exactly 1 s, 2 s, …
	if change != nil {
		change(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close) // before the server's Close (cleanups run last first)
	r.h = h
	return r
}

// event is an engine event on server at the clock's time.
func (r *rig) event(kind engine.EventKind, server, message string) engine.Event {
	return engine.Event{Time: r.clock.Now(), Kind: kind, Server: server, Message: message}
}
