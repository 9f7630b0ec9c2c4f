package engine

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// ErrBadLease: a lease was asked for without an id or with a negative TTL.
var ErrBadLease = errors.New("invalid lease")

// badLease is an ErrBadLease that says what is wrong in its own words.
type badLease string

func (e badLease) Error() string        { return string(e) }
func (e badLease) Is(target error) bool { return target == ErrBadLease }

// Lease is one claim that an agent turn is busy: while any lease is held, scheduled refreshes wait
// (until their hard deadline). Leases come from the tray toggle, `authkeeper busy`, and the control API.
type Lease struct {
	ID      string        `json:"id"`
	Label   string        `json:"label,omitempty"`
	Started time.Time     `json:"started"`
	TTL     time.Duration `json:"ttl"`
}

// Expires is when the lease ends by itself.
func (l Lease) Expires() time.Time { return l.Started.Add(l.TTL) }

const (
	// DefaultLeaseTTL bounds a lease whose holder forgot to end it (a crashed hook, a killed shell).
	DefaultLeaseTTL = 30 * time.Minute
	// MaxLeaseTTL caps any requested TTL: a forgotten lease must not hold refreshes back for days. The
	// hard deadline protects the tokens regardless; this keeps refreshes on their planned schedule.
	MaxLeaseTTL = 12 * time.Hour
)

// Busy is the set of busy leases plus, per server, the number of proxy requests in flight. Safe for
// concurrent use. onChange is called (outside the lock) after every change of the leases (leases true)
// and whenever a server's last in-flight request completes (leases false) — not per request, so a
// Busy proxy does not flood the tray.
type Busy struct {
	clock    Clock
	onChange func(leases bool)

	mu       sync.Mutex
	leases   map[string]lease
	inflight map[string]int
	gen      uint64 // bumped per Start, so a renewed lease's old timer cannot end it
}

type lease struct {
	Lease
	timer Timer
	gen   uint64
}

// NewBusy returns an empty lease set. onChange may be nil.
func NewBusy(clock Clock, onChange func(leases bool)) *Busy {
	if onChange == nil {
		onChange = func(bool) {}
	}
	return &Busy{clock: clock, onChange: onChange, leases: map[string]lease{}, inflight: map[string]int{}}
}

// Start takes or renews the lease id for ttl (0 means DefaultLeaseTTL; capped at MaxLeaseTTL).
func (b *Busy) Start(id, label string, ttl time.Duration) (Lease, error) {
	if id == "" {
		return Lease{}, badLease("busy: a lease needs an id")
	}
	if ttl < 0 {
		return Lease{}, badLease(fmt.Sprintf("busy: lease %q: negative ttl %v", id, ttl))
	}
	if ttl == 0 {
		ttl = DefaultLeaseTTL
	}
	ttl = min(ttl, MaxLeaseTTL)
	l := Lease{ID: id, Label: label, Started: b.clock.Now(), TTL: ttl}
	b.mu.Lock()
	if old, ok := b.leases[id]; ok {
		old.timer.Stop()
	}
	b.gen++
	gen := b.gen
	b.leases[id] = lease{Lease: l, gen: gen, timer: b.clock.AfterFunc(ttl, func() { b.expire(id, gen) })}
	b.mu.Unlock()
	b.onChange(true)
	return l, nil
}

// expire ends lease id if it is still generation gen (a renewal starts a new one).
func (b *Busy) expire(id string, gen uint64) {
	b.mu.Lock()
	l, ok := b.leases[id]
	ok = ok && l.gen == gen
	if ok {
		delete(b.leases, id)
	}
	b.mu.Unlock()
	if ok {
		b.onChange(true)
	}
}

// End releases lease id and reports whether it was held.
func (b *Busy) End(id string) bool {
	b.mu.Lock()
	l, ok := b.leases[id]
	if ok {
		l.timer.Stop()
		delete(b.leases, id)
	}
	b.mu.Unlock()
	if ok {
		b.onChange(true)
	}
	return ok
}

// Acquire marks one proxy request to server as in flight; call the returned func when it completes.
func (b *Busy) Acquire(server string) (release func()) {
	b.mu.Lock()
	b.inflight[server]++
	b.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			last := false
			if b.inflight[server]--; b.inflight[server] <= 0 {
				delete(b.inflight, server)
				last = true
			}
			b.mu.Unlock()
			if last {
				b.onChange(false)
			}
		})
	}
}

// Active reports whether refreshes of server should wait: a lease is held or one of its requests is
// in flight through the proxy.
func (b *Busy) Active(server string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.leases) > 0 || b.inflight[server] > 0
}

// Leases returns the held leases, oldest first.
func (b *Busy) Leases() []Lease {
	b.mu.Lock()
	out := make([]Lease, 0, len(b.leases))
	for _, l := range b.leases {
		out = append(out, l.Lease)
	}
	b.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		return out[i].ID < out[j].ID
	})
	return out
}
