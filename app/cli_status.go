package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/authkeeper/authkeeper/app/engine"
	"io"
	"time"
)

// cmdStatus asks the running engine for its state over the control API (its unix socket; on Windows
// its named pipe). It never starts one. During a hand-over it waits for the next owner (see
// awaitNextOwner).
func cmdStatus(ctx context.Context, args []string, e env) error {
	fs := newFlags("status", e)
	asJSON := fs.Bool("json", false, "print the raw /healthz document")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return errors.New("usage: authkeeper status [--json]")
	}
	paths, err := engine.DefaultPaths(e.getenv)
	if err != nil {
		return err
	}
	// While ownership changes hands (a bridge handing over to the app, the next owner starting) this
	// waits for the next owner, saying so, instead of reporting that nothing runs.
	r, err := awaitNextOwner(ctx, e, paths)
	if errors.Is(err, errNoOwner) {
		return fmt.Errorf("authkeeper is not running (no answer on %s); start it with `authkeeper` or `authkeeper serve`", engine.OwnerSocket(paths))
	}
	if err != nil {
		return err
	}
	h, err := r.Health(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(h)
	}
	s, err := r.Status(ctx)
	if err != nil {
		return err
	}
	owner := ""
	if h.Temporary {
		owner = " (a bridge or command owns the credentials until the app or `serve` starts)"
	}
	fmt.Fprintf(e.stdout, "authkeeper %s: running for %s%s, proxy %s, %d server(s)\n",
		h.Version, time.Duration(h.Uptime*float64(time.Second)).Round(time.Second), owner, h.ProxyURL, len(s.Servers))
	printServers(e.stdout, s.Servers, time.Now())
	for _, l := range s.Leases {
		fmt.Fprintf(e.stdout, "  busy: %s (%s) until %s\n", l.ID, l.Label, l.Expires().Format(time.Kitchen))
	}
	return nil
}

// printServers prints each server's line of `authkeeper status`, and under it one line per warning.
func printServers(w io.Writer, servers []engine.ServerStatus, now time.Time) {
	for _, st := range servers {
		fmt.Fprintln(w, statusLine(st, now))
		for _, wn := range st.Warnings {
			fmt.Fprintf(w, "  %-20s warning: %s\n", "", wn.Message)
		}
	}
}

// statusLine is one server's line in `authkeeper status`.
func statusLine(st engine.ServerStatus, now time.Time) string {
	left := "no token"
	switch {
	case st.NoExpiry:
		left = "no expiry"
	case !st.Expiry.IsZero():
		left = "expires in " + st.Expiry.Sub(now).Round(time.Second).String()
	}
	note := ""
	if st.Unsaved {
		note = " — not saved: the keychain is unavailable, the newest token is kept in memory"
	} else if st.State != engine.StateFresh && st.Message != "" {
		note = " — " + st.Message
	}
	return fmt.Sprintf("  %-20s %-14s %s%s", st.Name, st.State, left, note)
}
