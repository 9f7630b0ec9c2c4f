package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/fleet"
	"github.com/authkeeper/authkeeper/keychain"
)

// Moving a grant from one machine to another: `authkeeper export NAME | ssh box authkeeper import`.
// The grant travels as one line, sealed with the fleet key (AES-256-GCM, see app/fleet), which both
// machines have and which never travels with it; its token material is never printed or written in
// plain text. An export is a move, never a copy: two machines refreshing one rotating refresh token
// make the authorization server revoke the grant (see engine.ExportBegin).

// The fleet key's sources, after --fleet-key-file: a file named by the first, else the key lines
// themselves in the second.
const (
	envFleetKeyFile = "AUTHKEEPER_FLEET_KEY_FILE"
	envFleetKey     = "AUTHKEEPER_FLEET_KEY"
)

const (
	// grantPrefix starts a sealed grant's line; the rest is base64url (no padding) of the sealed JSON.
	grantPrefix = "authkeeper-grant-v1:"
	// grantAAD binds the sealed bytes to their use: a record sealed for the fleet's store (whose AAD is
	// its etcd key) does not open as a transfer, nor the reverse.
	grantAAD = "authkeeper-export-v1"
	// maxGrantLine bounds what import reads: a grant is a few KB (Entra tokens and a private key fit).
	maxGrantLine = 1 << 20
)

// sealedGrant is what a grant line seals.
type sealedGrant struct {
	Server   keychain.Server `json:"server"`
	Record   keychain.Record `json:"record"`
	Exported time.Time       `json:"exported"`
	From     string          `json:"from"` // the exporting machine's host name
}

// sealer is the part of the fleet's keys a transfer needs (*fleet.Keys).
type sealer interface {
	Seal(aad, plaintext []byte) ([]byte, error)
	Open(aad, sealed []byte) ([]byte, error)
}

// errNoFleetKey says how to make and name a fleet key.
var errNoFleetKey = errors.New("no fleet key: make one with `authkeeper fleet keygen > fleet.key; chmod 600 fleet.key`, " +
	"copy it to the other machine out of band (never next to the grant), and name it with --fleet-key-file or $" +
	envFleetKeyFile + " (or put the key line itself in $" + envFleetKey + ")")

// fleetKeys loads the fleet key from flagPath, else $AUTHKEEPER_FLEET_KEY_FILE, else
// $AUTHKEEPER_FLEET_KEY.
func fleetKeys(e env, flagPath string) (sealer, error) {
	path := flagPath
	if path == "" {
		path = e.getenv(envFleetKeyFile)
	}
	value := ""
	if path == "" {
		if value = e.getenv(envFleetKey); strings.TrimSpace(value) == "" {
			return nil, errNoFleetKey
		}
	}
	k, err := fleet.LoadKeys(path, value)
	if err != nil {
		return nil, fmt.Errorf("fleet key: %w", err)
	}
	return k, nil
}

// sealGrant returns g's grant line.
func sealGrant(k sealer, g sealedGrant) (string, error) {
	plain, err := json.Marshal(g)
	if err != nil {
		return "", err
	}
	sealed, err := k.Seal([]byte(grantAAD), plain)
	clear(plain)
	if err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	return grantPrefix + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// errNotAGrant: the input is not a grant line at all (as opposed to one that does not open).
var errNotAGrant = errors.New("the input is not a grant from `authkeeper export` (a line starting " + grantPrefix + ")")

// openGrant opens a grant line. Its errors never quote the input.
func openGrant(k sealer, line string) (sealedGrant, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(line), grantPrefix)
	if !ok {
		return sealedGrant{}, errNotAGrant
	}
	sealed, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(b64, "="))
	if err != nil {
		return sealedGrant{}, fmt.Errorf("%w: it is cut short or changed", errNotAGrant)
	}
	plain, err := k.Open([]byte(grantAAD), sealed)
	switch {
	case errors.Is(err, fleet.ErrUnknownKey):
		return sealedGrant{}, fmt.Errorf("the grant was sealed with a fleet key this machine does not have (%w); "+
			"nothing was imported", err)
	case err != nil:
		return sealedGrant{}, fmt.Errorf("the grant does not open with this fleet key: it was changed on the way, or sealed "+
			"with another fleet's key of the same id (%w); nothing was imported", err)
	}
	defer clear(plain)
	var g sealedGrant
	if err := json.Unmarshal(plain, &g); err != nil {
		return sealedGrant{}, errors.New("the grant opened but its content is not a grant; nothing was imported")
	}
	return g, nil
}

func cmdExport(ctx context.Context, args []string, e env) error {
	fs := newFlags("export", e)
	out := fs.String("out", "", "write the sealed grant to `FILE` (created 0600; it must not exist) instead of stdout")
	keyFile := fs.String("fleet-key-file", "", "the fleet key `FILE` (default $"+envFleetKeyFile+", else the key in $"+envFleetKey+")")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: authkeeper export NAME [--out FILE] [--fleet-key-file FILE]")
	}
	name := pos[0]
	// Every refusal that does not need the grant comes before the owner stops refreshing it.
	keys, err := fleetKeys(e, *keyFile)
	if err != nil {
		return err
	}
	if *out == "" && isTerminal(e.stdout) {
		return errors.New("export: stdout is a terminal: the sealed grant does not belong in its scrollback; " +
			"pipe it (`authkeeper export " + name + " | ssh HOST authkeeper import`) or write it with --out FILE")
	}
	if *out != "" {
		if _, err := os.Lstat(*out); err == nil {
			return fmt.Errorf("export: %s exists; name a new file", *out)
		}
	}
	r, stop, err := connect(ctx, e, "", nil)
	if err != nil {
		return err
	}
	defer stop()
	t, err := r.ExportBegin(ctx, name)
	if errors.Is(err, engine.ErrSharedStore) {
		return fmt.Errorf("%s: already shared through the fleet's etcd: every instance of the fleet serves it, nothing to move", name)
	}
	if err != nil {
		return err
	}
	// From here the owner no longer refreshes the grant: write it out, then finish the move; if it
	// cannot be written, give the grant back to the owner, which then refreshes it as before.
	host, _ := os.Hostname()
	line, err := sealGrant(keys, sealedGrant{Server: t.Server, Record: t.Record, Exported: time.Now().UTC(), From: host})
	if err == nil {
		err = writeGrant(e, *out, line)
	}
	if err != nil {
		if aerr := ownerCall(ctx, e, r, func(r *control.Remote) error { return r.ExportAbort(context.WithoutCancel(ctx), t.Server) }); aerr != nil {
			return fmt.Errorf("export %s: %w; and it could not be given back to authkeeper here: %w "+
				"(its credentials are still stored here but nothing refreshes them: sign in again with `authkeeper add`)", name, err, aerr)
		}
		return fmt.Errorf("export %s: %w; nothing moved: this machine refreshes it as before", name, err)
	}
	if err := ownerCall(ctx, e, r, func(r *control.Remote) error { return r.ExportCommit(context.WithoutCancel(ctx), name) }); err != nil {
		// The grant is out and nothing refreshes it here; only its stored copy could not be deleted.
		fmt.Fprintf(e.stderr, "authkeeper: warning: %s's credentials could not be deleted here (%v); they are not used: "+
			"no server of that name is configured here any more\n", name, err)
	}
	where := "import it on the target (`authkeeper import`)"
	if *out != "" {
		where = "import " + *out + " on the target (`authkeeper import " + filepath.Base(*out) + "`), then delete the file"
	}
	fmt.Fprintf(e.stderr, "moved %s (%s): this machine no longer refreshes it; %s\n", name, t.Server.URL, where)
	return nil
}

// writeGrant writes the grant line to the file out (created 0600, never replacing one), or to stdout.
// A reader that went away (ssh failed) is an error here, not a SIGPIPE that kills the process before
// it can give the grant back to the owner.
func writeGrant(e env, out, line string) error {
	if out != "" {
		if err := keychain.CreateFileAtomic(out, []byte(line+"\n"), 0o600); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s exists; name a new file", out)
			}
			return err
		}
		return nil
	}
	if f, ok := e.stdout.(*os.File); ok {
		signal.Ignore(syscall.SIGPIPE)
		defer signal.Reset(syscall.SIGPIPE)
		if _, err := io.WriteString(f, line+"\n"); err != nil {
			return fmt.Errorf("write the grant to stdout: %w", err)
		}
		return nil
	}
	_, err := io.WriteString(e.stdout, line+"\n")
	return err
}

// ownerCall makes call to the owner r; when r went away meanwhile (it handed over to the app, or it
// was this command's own engine and closed), once more to the next owner. Both export calls after
// ExportBegin can be made to another owner: the state they act on is in the settings and the store.
func ownerCall(ctx context.Context, e env, r *control.Remote, call func(*control.Remote) error) error {
	err := call(r)
	if !errors.Is(err, control.ErrNoAnswer) {
		return err
	}
	next, stop, cerr := connect(ctx, e, "", nil)
	if cerr != nil {
		return errors.Join(err, cerr)
	}
	defer stop()
	return call(next)
}

// isTerminal reports whether stream (stdin or stdout) is a terminal: a character device, as is
// /dev/null, where a grant would be lost as surely.
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func cmdImport(ctx context.Context, args []string, e env) error {
	fs := newFlags("import", e)
	replace := fs.Bool("replace", false, "overwrite the credentials stored here under the grant's name")
	keyFile := fs.String("fleet-key-file", "", "the fleet key `FILE` (default $"+envFleetKeyFile+", else the key in $"+envFleetKey+")")
	store := fs.String("store", "", "the credential store, `KIND` keychain or file, of the engine this command starts when no authkeeper is running")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return errors.New("usage: authkeeper import [--replace] [--fleet-key-file FILE] [FILE|-]")
	}
	src := "-"
	if len(pos) == 1 {
		src = pos[0]
	}
	line, err := readGrant(e, src)
	if err != nil {
		return err
	}
	// From stdin the line exists nowhere else once the exporter finished the move: whatever fails from
	// here on, it is kept (sealed, 0600) so that the import can be run again.
	keep := func(err error) error {
		if src != "-" {
			return err
		}
		if path, kerr := keepGrant(e, line); kerr == nil {
			return fmt.Errorf("%w\nthe sealed grant is kept in %s: fix the cause and run `authkeeper import %s`", err, path, path)
		}
		return err
	}
	keys, err := fleetKeys(e, *keyFile)
	if err != nil {
		return keep(err)
	}
	g, err := openGrant(keys, line)
	if err != nil {
		return keep(err)
	}
	name := g.Server.Name
	r, stop, err := connect(ctx, e, *store, nil)
	if err != nil {
		return keep(err)
	}
	defer stop()
	st, err := r.Import(ctx, control.ImportBody{Server: g.Server, Record: g.Record, Replace: *replace, From: g.From})
	switch {
	case errors.Is(err, engine.ErrHasCredentials):
		return keep(fmt.Errorf("%s already has credentials here; --replace to overwrite", name))
	case err != nil:
		return keep(err)
	}
	valid := "no token yet"
	switch {
	case st.Auth == string(engine.RegistrationNoAuth):
		valid = "no sign-in needed"
	case st.NoExpiry:
		valid = "token without expiry"
	case !st.Expiry.IsZero():
		valid = "token valid until " + st.Expiry.Local().Format(time.DateTime)
	}
	from := ""
	if g.From != "" {
		from = ", from " + g.From
	}
	fmt.Fprintf(e.stdout, "imported %s (%s)%s, %s\n", name, st.URL, from, valid)
	return nil
}

// readGrant reads one grant line from src, a file or "-" for stdin.
func readGrant(e env, src string) (string, error) {
	var rd io.Reader
	if src == "-" {
		if e.stdin == nil {
			return "", errors.New("import: no standard input; name the grant's FILE")
		}
		if isTerminal(e.stdin) {
			fmt.Fprintln(e.stderr, "Paste the grant line from `authkeeper export`, then press Enter and Ctrl-D:")
		}
		rd = e.stdin
	} else {
		f, err := os.Open(src)
		if err != nil {
			return "", fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		rd = f
	}
	data, err := io.ReadAll(io.LimitReader(rd, maxGrantLine+1))
	if err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	if len(data) > maxGrantLine {
		return "", errors.New("import: the input is too long for a grant")
	}
	line := strings.TrimSpace(string(data))
	if line == "" {
		return "", errors.New("import: no grant on the input; pipe `authkeeper export NAME` into it, or name a FILE")
	}
	if !strings.HasPrefix(line, grantPrefix) || strings.ContainsAny(line, " \t\r\n") {
		return "", errNotAGrant
	}
	return line, nil
}

// keepGrant saves a grant line that could not be imported to a new 0600 file in the state directory
// and returns its path. The line is sealed: the file holds no token in plain text.
func keepGrant(e env, line string) (string, error) {
	paths, err := engine.DefaultPaths(e.getenv)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(paths.StateDir, "imports")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "grant-"+time.Now().UTC().Format("20060102T150405.000000000Z")+".txt")
	return path, keychain.CreateFileAtomic(path, []byte(line+"\n"), 0o600)
}

func cmdFleet(_ context.Context, args []string, e env) error {
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := newFlags(strings.TrimSpace("fleet "+sub), e)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch sub {
	case "keygen":
	case "":
		return errors.New("usage: authkeeper fleet keygen [ID]")
	default:
		return fmt.Errorf("fleet: unknown subcommand %q (keygen)", sub)
	}
	if len(pos) > 1 {
		return errors.New("usage: authkeeper fleet keygen [ID]")
	}
	id := "k1"
	if len(pos) == 1 {
		id = pos[0]
	}
	line, err := fleet.NewKeyLine(id)
	if err != nil {
		return err
	}
	// The one secret this command exists to print.
	fmt.Fprintln(e.stdout, line)
	fmt.Fprintln(e.stderr, "authkeeper: a new fleet key: store it in a file only you can read (chmod 600), give it to every "+
		"machine of the fleet out of band, never through etcd or next to an exported grant; to rotate, put the new key's line "+
		"first and keep the old one after it until every record is rewritten")
	return nil
}
