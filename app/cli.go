package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"time"
)

// newFlags returns the flag set of the command name ("busy start": a subcommand). It prints nothing:
// the flag package calls Usage both for -h and for a wrong flag and cannot say which stream suits, so
// parse returns either as a *flagError and dispatch prints the help on stdout or the error on stderr,
// once.
func newFlags(name string, _ env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args, allowing flags after positional arguments (`add URL --name x`). A wrong flag
// and -h/--help are a *flagError (see dispatch).
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, &flagError{fs: fs, err: err}
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// cmdSimple runs a one-name command against the owner. While ownership changes hands (a bridge or
// command that owned hands over to the app or `serve`) it waits for the next owner, saying so, rather
// than failing or racing to own; a call the owner could not answer because it handed over meanwhile
// is made once more to the next owner (refresh, logout and remove can be asked twice).
func cmdSimple(ctx context.Context, verb string, args []string, e env, call func(*control.Remote, string) error, done string) error {
	fs := newFlags(verb, e)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("usage: authkeeper %s NAME", verb)
	}
	paths, err := engine.DefaultPaths(e.getenv)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		// With no owner at all, or one that is not the user's (see connectAfter), connect makes this
		// command the owner.
		_, err := awaitNextOwner(ctx, e, paths)
		if err != nil && !errors.Is(err, errNoOwner) && !errors.Is(err, control.ErrNotYours) {
			return err
		}
		r, stop, err := connect(ctx, e, "", nil)
		if err != nil {
			return err
		}
		err = call(r, pos[0])
		stop()
		if errors.Is(err, control.ErrNoAnswer) && attempt == 0 {
			continue // the owner went away before it answered: ask the next one
		}
		if err != nil && !(attempt > 0 && doneBefore(verb, err)) {
			return err
		}
		fmt.Fprintf(e.stdout, done+"\n", pos[0])
		return nil
	}
}

// doneBefore reports whether err, from verb's call made again to the next owner after the first one
// went away without answering, means the first owner had done it before it handed over. Only remove
// needs it: the server it removed is unknown to the next owner (engine.ErrUnknownServer), which is
// what remove was asked for. logout made again succeeds by itself — the next owner finds no token to
// revoke, and a credential already deleted is not an error (engine.Logout) — and so does refresh,
// which merely refreshes once more.
func doneBefore(verb string, err error) bool {
	return verb == "remove" && errors.Is(err, engine.ErrUnknownServer)
}

// errNoOwner: no owner answers and none holds the owner lock (see awaitNextOwner).
var errNoOwner = errors.New("authkeeper is not running")

// handoverPoll is how often awaitNextOwner asks for the next owner; it looks at the owner lock a
// tenth as often, since each look takes it for an instant (see engine.OwnerLockHeld).
const handoverPoll = 50 * time.Millisecond

// awaitNextOwner returns a client of the owner. An owner that answers with an error, or what answers
// but is not the user's (control.ErrNotYours), is reported at once. When none answers
// (control.ErrNoAnswer) but the owner lock is held,
// ownership is changing hands — a bridge or command that owned is handing over to the app or
// `serve`, or the next owner is starting — and it says so on stderr and waits up to handoverWait for
// the next owner to answer. With no owner and the lock free (for a second, when it was waiting: the
// lock is free for a moment between two owners), the error is errNoOwner.
func awaitNextOwner(ctx context.Context, e env, paths engine.Paths) (*control.Remote, error) {
	r, err := reach(ctx, paths)
	if !errors.Is(err, control.ErrNoAnswer) {
		return r, err // an owner, or one that answered with an error, or one that is not the user's
	}
	held, err := engine.OwnerLockHeld(paths)
	if err != nil {
		return nil, err
	}
	if !held {
		return nil, errNoOwner
	}
	fmt.Fprintf(e.stderr, "authkeeper: the credentials are changing owner (a bridge or command is handing them over to the app, "+
		"or the next owner is starting); waiting up to %s for it\n", handoverWait)
	deadline := time.Now().Add(handoverWait)
	var freeSince time.Time
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(handoverPoll): // the owner is another process, which cannot signal us
		}
		r, err := reach(ctx, paths)
		if !errors.Is(err, control.ErrNoAnswer) {
			return r, err
		}
		if i%10 == 0 {
			held, err := engine.OwnerLockHeld(paths)
			switch {
			case err != nil:
				return nil, err
			case held:
				freeSince = time.Time{}
			case freeSince.IsZero():
				freeSince = time.Now()
			case time.Since(freeSince) >= time.Second:
				return nil, errNoOwner
			}
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("the credentials are changing owner, but no owner answered on %s within %s; "+
				"try again, or see `authkeeper status`", engine.OwnerSocket(paths), handoverWait)
		}
	}
}

func cmdBusy(ctx context.Context, args []string, e env) error {
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := newFlags(strings.TrimSpace("busy "+sub), e)
	id := fs.String("id", "", "the lease id (default for run: run-PID)")
	label := fs.String("label", "", "what the lease is for, shown in the tray")
	ttl := fs.Duration("ttl", engine.DefaultLeaseTTL, "how long the lease lasts unless ended or renewed")
	var rest []string
	if sub == "run" {
		// Everything after -- is the command.
		for i, a := range args {
			if a == "--" {
				args, rest = args[:i], args[i+1:]
				break
			}
		}
	}
	if _, err := parse(fs, args); err != nil {
		return err
	}
	switch sub {
	case "":
		return errors.New("usage: authkeeper busy start|end|run|list [flags]")
	case "start", "end", "run", "list":
	default:
		return fmt.Errorf("busy: unknown subcommand %q (start, end, run, list)", sub)
	}
	paths, err := engine.DefaultPaths(e.getenv)
	if err != nil {
		return err
	}
	// Leases matter only to a running owner, so busy never starts one: with none running nothing is
	// refreshing, and a long `busy run` must not make this process the owner for hours.
	r, err := reach(ctx, paths)
	if err != nil {
		if sub == "run" {
			fmt.Fprintln(e.stderr, "authkeeper: not running; nothing to defer, running the command without a lease")
			return runPlain(rest, e)
		}
		fmt.Fprintln(e.stderr, "authkeeper: not running; nothing to defer")
		return nil
	}
	switch sub {
	case "start":
		if *id == "" {
			return errors.New("usage: authkeeper busy start --id ID [--ttl 30m] [--label TEXT]")
		}
		l, err := r.BusyStart(ctx, *id, *label, *ttl)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "busy: lease %s held until %s\n", l.ID, l.Expires().Format(time.Kitchen))
	case "end":
		if *id == "" {
			return errors.New("usage: authkeeper busy end --id ID")
		}
		ended, err := r.BusyEnd(ctx, *id)
		if err != nil {
			return err
		}
		if !ended {
			fmt.Fprintf(e.stdout, "busy: no lease %s was held\n", *id)
		}
	case "list":
		s, err := r.Status(ctx)
		if err != nil {
			return err
		}
		for _, l := range s.Leases {
			fmt.Fprintf(e.stdout, "%s\t%s\tuntil %s\n", l.ID, l.Label, l.Expires().Format(time.RFC3339))
		}
	case "run":
		return busyRun(ctx, r, *id, *label, rest, e)
	}
	return nil
}

// busyRun holds a lease while cmd runs. The lease is short and renewed, so a killed `busy run` frees
// refreshes within a minute instead of holding them for a whole TTL.
func busyRun(ctx context.Context, r *control.Remote, id, label string, cmd []string, e env) error {
	if len(cmd) == 0 {
		return errors.New("usage: authkeeper busy run [--id ID] [--label TEXT] -- COMMAND [ARGS...]")
	}
	if id == "" {
		id = fmt.Sprintf("run-%d", os.Getpid())
	}
	if label == "" {
		label = strings.Join(cmd, " ")
	}
	const ttl = time.Minute
	if _, err := r.BusyStart(ctx, id, label, ttl); err != nil {
		return err
	}
	defer r.BusyEnd(context.Background(), id) //nolint:errcheck // best effort: the lease expires anyway
	renew := time.NewTicker(ttl / 3)
	defer renew.Stop()
	c := exec.Command(cmd[0], cmd[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, e.stdout, e.stderr
	signal.Ignore(os.Interrupt) // the child gets the terminal's ^C; we end the lease after it exits
	defer signal.Reset(os.Interrupt)
	if err := c.Start(); err != nil {
		return fmt.Errorf("busy run: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	for {
		select {
		case err := <-exited:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return exitCode(ee.ExitCode())
			}
			return err
		case <-renew.C:
			_, _ = r.BusyStart(ctx, id, label, ttl)
		}
	}
}

// runPlain runs cmd with the terminal and returns its exit status.
func runPlain(cmd []string, e env) error {
	if len(cmd) == 0 {
		return errors.New("usage: authkeeper busy run [--id ID] [--label TEXT] -- COMMAND [ARGS...]")
	}
	c := exec.Command(cmd[0], cmd[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, e.stdout, e.stderr
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return exitCode(ee.ExitCode())
	}
	return err
}

// exitCode is an error that carries the exit status of a wrapped command.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("command exited with status %d", int(c)) }
