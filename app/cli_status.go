package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
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
	printFleet(e.stdout, s.Fleet)
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
		if st.Fleet != nil {
			fmt.Fprintf(w, "  %-20s %s\n", "", fleetLine(*st.Fleet, now))
		}
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

// printFleet prints the fleet's line of `authkeeper status`: this instance and the live ones.
func printFleet(w io.Writer, v *engine.FleetView) {
	if v == nil {
		return
	}
	ids := make([]string, 0, len(v.Members))
	for _, m := range v.Members {
		ids = append(ids, m.ID)
	}
	fmt.Fprintf(w, "fleet: this is %s; %d instance(s) live: %s\n", v.Instance, len(ids), strings.Join(ids, ", "))
	if v.Error != "" {
		fmt.Fprintf(w, "fleet: the store did not answer at %s: %s\n", v.Read.Format(time.TimeOnly), v.Error)
	}
}

// fleetLine is a server's fleet line: who refreshes its grant, when it was last written, who serves it.
func fleetLine(f engine.FleetServer, now time.Time) string {
	owner := f.Owner
	switch {
	case f.Leading:
		owner = "this instance"
	case owner == "":
		owner = "no instance (an election is under way, or the store has no quorum)"
	}
	line := "refreshed by " + owner
	if !f.LastWrite.IsZero() {
		by := ""
		if f.LastWriter != "" {
			by = " by " + f.LastWriter
		}
		line += fmt.Sprintf("; last written %s ago%s", now.Sub(f.LastWrite).Round(time.Second), by)
	}
	if len(f.Serving) > 0 {
		line += "; served by " + strings.Join(f.Serving, ", ")
	}
	return line
}
