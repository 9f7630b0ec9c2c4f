package engine

import "github.com/authkeeper/authkeeper/oauth"

// Health is the /healthz document: whether the engine is up and, per server, whether it can hand out
// a token and for how many seconds the current one stays valid.
type Health struct {
	Status   string         `json:"status"` // "ok" while the engine serves
	Version  string         `json:"version"`
	Uptime   float64        `json:"uptime_seconds"`
	ProxyURL string         `json:"proxy_url"`
	Config   string         `json:"config_file"`
	Servers  []ServerHealth `json:"servers"`
	// Temporary is set when a command owns only until the app starts (see Config.Temporary).
	Temporary bool `json:"temporary,omitempty"`
	// Fleet is set when the credentials are shared with other instances (see Engine.FleetMode).
	Fleet *FleetView `json:"fleet,omitempty"`
}

// ServerHealth is one server's line in Health.
type ServerHealth struct {
	Name        string  `json:"name"`
	State       string  `json:"state"` // healthy | degraded | needs-sign-in
	SecondsLeft float64 `json:"seconds_left"`
	// NoExpiry is set for a token without expiry (SecondsLeft is then 0): it serves until refused.
	NoExpiry bool `json:"no_expiry,omitempty"`
	// Quirks and Warnings are the spec deviations tolerated for the grant (see ServerStatus).
	Quirks   []oauth.Quirk `json:"quirks,omitempty"`
	Warnings []Warning     `json:"warnings,omitempty"`
	// Fleet says which instance refreshes the grant and which serve it (fleet mode only).
	Fleet *FleetServer `json:"fleet,omitempty"`
}

// Health reports whether the engine serves and, per server, whether it can hand out a token.
func (e *Engine) Health() Health {
	now := e.cfg.Clock.Now()
	h := Health{Status: "ok", Version: e.cfg.Version, ProxyURL: e.ProxyURL(), Config: e.ConfigFile(), Servers: []ServerHealth{},
		Temporary: e.cfg.Temporary}
	e.mu.Lock()
	h.Uptime = now.Sub(e.started).Seconds()
	e.mu.Unlock()
	snap := e.Snapshot()
	h.Fleet = snap.Fleet
	for _, st := range snap.Servers {
		sh := ServerHealth{Name: st.Name, State: "healthy", NoExpiry: st.NoExpiry, Quirks: st.Quirks, Warnings: st.Warnings, Fleet: st.Fleet}
		if !st.Expiry.IsZero() {
			sh.SecondsLeft = max(0, st.Expiry.Sub(now).Seconds())
		}
		if st.Unsaved {
			sh.State = "degraded" // serving, but the keychain has not got the newest pair
		}
		switch st.State {
		case StateDegraded:
			sh.State = "degraded"
		case StateNeedsSignIn, StateRevoked, StateDisabled:
			sh.State = "needs-sign-in"
		}
		h.Servers = append(h.Servers, sh)
	}
	return h
}
