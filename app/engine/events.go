package engine

import (
	"sync"
	"time"

	"github.com/authkeeper/authkeeper/oauth"
)

// EventKind names what happened. The tray turns events into notifications; the audit log records them.
type EventKind string

// Event kinds.
const (
	EventRefreshed       EventKind = "refreshed"        // a scheduled or forced refresh succeeded
	EventDeferred        EventKind = "deferred"         // a due refresh waits for an agent turn to end
	EventDeadlineRefresh EventKind = "deadline_refresh" // refreshed while busy because expiry was near
	EventNeedsSignIn     EventKind = "needs_sign_in"    // the grant is gone; the user must sign in
	EventSignedIn        EventKind = "signed_in"        // an interactive sign-in completed
	EventDegraded        EventKind = "degraded"         // a refresh failed transiently; the token still works
	EventRecovered       EventKind = "recovered"        // a degraded server refreshed again
	EventRevoked         EventKind = "revoked"          // the server rejected a token we believed valid
	EventBusyChanged     EventKind = "busy_changed"     // leases were taken or released
	EventWarning         EventKind = "warning"          // something the user should know (e.g. a failed save)
	EventAdded           EventKind = "added"            // a server was added
	EventRemoved         EventKind = "removed"          // a server was removed
	EventSignedOut       EventKind = "signed_out"       // the user signed out (logout); no token is kept
	EventAdopted         EventKind = "adopted"          // took the pair another instance of the fleet wrote
)

// Event is one thing that happened to a server (or to the engine when Server is empty). It never
// carries token material: no field can hold a token, and Message is built from classified errors.
type Event struct {
	Time    time.Time `json:"time"`
	Kind    EventKind `json:"kind"`
	Server  string    `json:"server,omitempty"`
	Trigger Trigger   `json:"trigger,omitempty"`
	Outcome Outcome   `json:"outcome,omitempty"`
	Scopes  []string  `json:"scopes,omitempty"`
	Expiry  time.Time `json:"expiry,omitzero"`
	// Quirks are the spec deviations a sign-in tolerated (see oauth.Quirk); names only, never values.
	Quirks  []oauth.Quirk `json:"quirks,omitempty"`
	Message string        `json:"message,omitempty"`
}

// Hub fans events out to subscribers. A subscriber that falls more than its buffer behind is dropped
// (its channel closed) rather than slowing the engine; it re-subscribes and gets a fresh snapshot.
// Safe for concurrent use.
type Hub struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

// subscriberBuffer is how many events a subscriber may lag behind before it is dropped.
const subscriberBuffer = 256

// NewHub returns a hub with no subscribers.
func NewHub() *Hub { return &Hub{subs: map[chan Event]struct{}{}} }

// Subscribe returns a channel of every event published from now on, and a cancel func.
func (h *Hub) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, subscriberBuffer)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
		h.mu.Unlock()
	}
}

// Publish sends e to every subscriber without blocking.
func (h *Hub) Publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}
