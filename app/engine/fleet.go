package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// Fleet is a credential store shared by several authkeeper instances that elects one refresher per
// grant (package app/fleet, over etcd). The engine's store is then the fleet's: its writes are
// compare-and-swap on the record's revision, and a refresh's recorded start is fenced by the election
// (see keeper_fleet.go). Implementations are safe for concurrent use.
type Fleet interface {
	FleetGate
	// Join campaigns for name's election in the background and marks this instance as serving it.
	Join(name string)
	// Leave resigns name's election and stops serving it.
	Leave(name string)
	// Watch sets the callbacks the fleet reports to; call it once, before the first Join. The
	// callbacks must not block.
	Watch(FleetEvents)
	// View reads the fleet's state: its live instances and, per server, who refreshes and who serves.
	View(ctx context.Context) (FleetView, error)
	// Close resigns every election and leaves the fleet.
	Close() error
}

// FleetEvents are what a fleet reports to the engine.
type FleetEvents struct {
	Changed func(name string)                 // another instance wrote or deleted name's record
	Leader  func(name string, leading bool)   // this instance won or lost name's election
	Asked   func(name, digest, reason string) // an instance asks this one, the refresher, for a refresh
}

// FleetView is the fleet's state as `authkeeper status` shows it.
type FleetView struct {
	Instance string                 `json:"instance"`
	Members  []FleetMember          `json:"members"`
	Servers  map[string]FleetServer `json:"-"` // copied into each ServerStatus
	Read     time.Time              `json:"read"`
	// Error says why the fleet's state could not be read (no quorum, say); the rest is then the last
	// state read.
	Error string `json:"error,omitempty"`
}

// FleetMember is one live instance of the fleet.
type FleetMember struct {
	ID      string    `json:"id"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
	Version string    `json:"version,omitempty"`
}

// FleetServer is one server's place in the fleet.
type FleetServer struct {
	Owner      string    `json:"owner,omitempty"` // the instance elected to refresh; "" while none is
	Leading    bool      `json:"leading"`         // this instance is the owner
	Serving    []string  `json:"serving,omitempty"`
	LastWriter string    `json:"last_writer,omitempty"`
	LastWrite  time.Time `json:"last_write,omitzero"` // when the stored pair was last written
}

// fleetState is the engine's fleet, when it runs in one.
type fleetState struct {
	f    Fleet
	view atomic.Pointer[FleetView]

	mu      sync.Mutex
	rereads map[string]bool // servers with a read of their record pending (see rereadLater)
}

// IsFleetStore reports whether a store kind names a store shared by a fleet (an etcd:// URL).
func IsFleetStore(kind string) bool {
	return strings.HasPrefix(kind, "etcd://") || strings.HasPrefix(kind, "etcds://")
}

// FleetMode reports whether the engine's credentials are shared with other instances through a fleet.
func (e *Engine) FleetMode() bool { return e.fleet != nil }

// joinFleet installs the fleet's callbacks; the keepers join as they start.
func (e *Engine) joinFleet(f Fleet) {
	e.fleet = &fleetState{f: f}
	f.Watch(FleetEvents{
		Changed: func(name string) { go e.fleetRead(name, false) },
		Leader: func(name string, leading bool) {
			if leading {
				go e.fleetRead(name, true)
				return
			}
			if k, err := e.keeper(name); err == nil {
				go k.Follow()
			}
		},
		Asked: func(name, digest, reason string) {
			if e.isClosing() {
				return // keepers are closing while the elections are still held: start nothing
			}
			if k, err := e.keeper(name); err == nil {
				go k.Asked(digest, reason)
			}
		},
	})
}

// fleetRead reads name's record as another instance left it and hands it to the keeper: to adopt, or,
// when lead is set, to take the grant over from.
func (e *Engine) fleetRead(name string, lead bool) {
	k, err := e.keeper(name)
	if err != nil {
		return
	}
	srv, err := e.Server(name)
	if err != nil {
		return
	}
	rec, err := e.store.Get(name)
	switch {
	case errors.Is(err, keychain.ErrNotFound):
		if !lead {
			if tok, _ := k.Credentials(); tok.AccessToken != "" {
				k.Dropped() // signed out on another instance: the grant is gone for the whole fleet
				e.publish(Event{Kind: EventSignedOut, Server: name, Trigger: TriggerFleet, Outcome: OutcomeOK})
			}
			return
		}
		rec = keychain.Record{}
	case err != nil:
		// The store does not answer: a leader plans from what it holds, and its first write finds out
		// whether that is current (compare-and-swap); a follower reads again shortly, or it would
		// keep asking about a token the refresher has replaced (and ignores asks about).
		if lead {
			k.Lead(stored{}, 0)
			return
		}
		e.rereadLater(name)
		return
	}
	st := e.fromRecord(srv, rec)
	if lead {
		k.Lead(st, rec.Revision)
		return
	}
	k.Observe(st, rec.Revision)
}

// rereadLater reads name's record again after fleetRereadAfter; at most one such read is pending per
// server, however many failed reads asked for one (a follower's asks fail every few seconds while the
// store is down).
func (e *Engine) rereadLater(name string) {
	fs := e.fleet
	fs.mu.Lock()
	if fs.rereads[name] {
		fs.mu.Unlock()
		return
	}
	if fs.rereads == nil {
		fs.rereads = map[string]bool{}
	}
	fs.rereads[name] = true
	fs.mu.Unlock()
	e.cfg.Clock.AfterFunc(fleetRereadAfter, func() {
		fs.mu.Lock()
		delete(fs.rereads, name)
		fs.mu.Unlock()
		if !e.isClosing() {
			e.fleetRead(name, false)
		}
	})
}

// fleetRereadAfter is how soon a follower reads a record again after the store did not answer.
const fleetRereadAfter = 5 * time.Second

// isClosing reports whether Close has begun.
func (e *Engine) isClosing() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closing
}

// joining reports whether the engine campaigns for its grants: a temporary owner (a command that runs
// only until the app or serve starts) serves them but never becomes a grant's refresher.
func (e *Engine) joining() bool { return e.fleet != nil && !e.cfg.Temporary }

// fleetViewEvery is how often the engine reads the fleet's state for its snapshot.
const fleetViewEvery = 2 * time.Second

// watchFleetView keeps the snapshot's fleet view current until the engine closes.
func (e *Engine) watchFleetView() {
	fs := e.fleet
	var tick func()
	tick = func() {
		e.mu.Lock()
		closing := e.closing
		e.mu.Unlock()
		if closing {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), fleetViewEvery)
		v, err := fs.f.View(ctx)
		cancel()
		if err != nil {
			if old := fs.view.Load(); old != nil {
				v = *old
			}
			v.Error = err.Error()
		}
		fs.view.Store(&v)
		e.cfg.Clock.AfterFunc(fleetViewEvery, tick)
	}
	tick()
}

// fleetStatus fills a snapshot's fleet fields.
func (e *Engine) fleetStatus(s *Snapshot) {
	if e.fleet == nil {
		return
	}
	v := e.fleet.view.Load()
	if v != nil {
		cp := *v
		s.Fleet = &cp
	}
	for i := range s.Servers {
		st := &s.Servers[i]
		var fs FleetServer
		if v != nil {
			fs = v.Servers[st.Name]
		}
		fs.Leading = e.fleet.f.Leading(st.Name)
		st.Fleet = &fs
	}
}

// putNew stores a new server's first record. In a fleet a record of that name may exist already (a
// grant another instance signed in): a sign-in's pair replaces it.
func (e *Engine) putNew(name string, rec keychain.Record) error {
	_, err := e.store.Put(name, rec)
	if e.fleet == nil || !errors.Is(err, keychain.ErrConflict) {
		return err
	}
	cur, err := e.store.Get(name)
	if err != nil && !errors.Is(err, keychain.ErrNotFound) {
		return err
	}
	rec.Revision = cur.Revision
	_, err = e.store.Put(name, rec)
	return err
}

// foreignFleetGrant says why a fleet grant for resource cannot serve the server named name at
// serverURL, or nil when it can (or names no resource). The two must be the same URL but for the
// query, which a resource no longer carries (oauth.ResourceOf) and which may hold an API key: it is
// neither compared nor shown. A resource that merely covers the URL (an origin a server's metadata
// names) is refused too: the record does not say which of the URLs under it the grant was signed in
// for, and another URL under the same name is a configuration mistake the user should hear about.
func foreignFleetGrant(name, resource, serverURL string) error {
	if resource == "" || oauth.SameResource(resource, serverURL) {
		return nil
	}
	return fmt.Errorf("%s: the fleet's credentials of that name are for %s, not %s; choose another name", name,
		oauth.RedactURL(resource), oauth.RedactURL(serverURL))
}

// sharedGrant adds srv without a sign-in when the fleet already holds a grant for it: the instance
// joins the grant another instance signed in (or imported). It reports whether it did so. A record
// for another URL under that name is an error, never overwritten silently.
func (e *Engine) sharedGrant(srv keychain.Server, req AddRequest) (bool, error) {
	if e.fleet == nil || req.StaticToken != "" {
		return false, nil
	}
	rec, err := e.store.Get(srv.Name)
	if err != nil || (rec.AccessToken == "" && rec.RefreshToken == "") {
		return false, nil // none (or unreadable: the sign-in's write will say so)
	}
	if err := foreignFleetGrant(srv.Name, grantOf(rec.Binding).Resource, srv.URL); err != nil {
		return true, err
	}
	tok := tokenOf(rec)
	return true, e.installServer(srv, Event{Kind: EventAdded, Server: srv.Name, Trigger: TriggerFleet, Outcome: OutcomeOK,
		Scopes: tok.Scopes, Expiry: tok.Expiry, Message: "joined the grant the fleet holds"}, func() error { return nil })
}
