package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/authkeeper/authkeeper/app/control"
)

// command is one command of the command line. The dispatcher runs it and every help text is rendered
// from it, so a command cannot exist without its help.
//
// Contract: run parses its flags with newFlags and parse before it does anything else. Help relies on
// it: `authkeeper help NAME` and the overview's flag lists run the command with --help and read the
// flags from the flag.FlagSet that parse hands back in a *flagError.
type command struct {
	name    string   // as typed
	aliases []string // other spellings ("" is the program run with no command)
	args    string   // the synopsis after the name: "[flags] URL"
	summary string   // one line, lowercase, for the overview
	about   string   // more for `authkeeper help NAME`: lines of at most 100 columns, or ""
	run     func(ctx context.Context, args []string, e env) error
}

// commands is the command line, in the order the overview lists it. A function, not a variable:
// the help command's run reads the table.
func commands() []command {
	simple := func(verb, done string, call func(*control.Remote, context.Context, string) error) func(context.Context, []string, env) error {
		return func(ctx context.Context, args []string, e env) error {
			return cmdSimple(ctx, verb, args, e, func(r *control.Remote, n string) error { return call(r, ctx, n) }, done)
		}
	}
	return []command{
		{name: "tray", aliases: []string{""}, args: "[flags]",
			summary: "the tray app; the headless engine when there is no display (the default command)",
			about: "With no command, authkeeper starts the tray app, or asks the one already running to show\n" +
				"its status window. Without a display, or in a headless build, it runs `authkeeper serve`.",
			run: cmdDefault},
		{name: "serve", args: "[flags]", summary: "the engine headless: MCP proxy + control API",
			about: "Runs until interrupted. Takes over the credentials from a bridge or another command that\n" +
				"started the engine before it; refuses to start beside another app or serve. Logs one line\n" +
				"per event on stderr, in logfmt: time=… level=info event=refreshed server=NAME trigger=… next=…",
			run: func(ctx context.Context, args []string, e env) error { return cmdServe(ctx, args, e, nil) }},
		{name: "status", args: "[flags]", summary: "each server's state, token lifetime and warnings",
			about: "Asks the running engine; never starts one. While a bridge hands the credentials over to\n" +
				"the app or serve, it waits for the next owner (up to 10s) and says so.", run: cmdStatus},
		{name: "add", args: "[flags] URL", summary: "sign in to an MCP server and keep its token fresh",
			about: "Signs in with the browser (or --device). Other ways in, none of them with a browser:\n" +
				"  --client-id ID --client-credentials   a machine identity (client_credentials); the secret\n" +
				"                                        from $AUTHKEEPER_CLIENT_SECRET or a key (--client-key-file)\n" +
				"  --token-stdin [--token-expires DATE]  a static token or API key, from stdin or $AUTHKEEPER_TOKEN\n" +
				"  --cross-app --client-id ID --idp-token-endpoint URL --idp-client-id ID\n" +
				"                                        enterprise-managed authorization through your identity\n" +
				"                                        provider (cross-app access); your ID token from\n" +
				"                                        $AUTHKEEPER_IDP_ID_TOKEN or --id-token-stdin\n" +
				"Secrets are never taken from the command line.",
			run: cmdAdd},
		{name: "login", args: "[flags] NAME", summary: "sign in to a server again",
			about: "A cross-app access server signs in with a new ID token from the identity provider.",
			run:   cmdLogin},
		{name: "logout", args: "NAME", summary: "revoke and forget a server's tokens",
			run: simple("logout", "Signed out of %s", (*control.Remote).Logout)},
		{name: "remove", args: "NAME", summary: "revoke a server's tokens and remove the server",
			run: simple("remove", "Removed %s", (*control.Remote).Remove)},
		{name: "refresh", args: "NAME", summary: "refresh a server's token now",
			run: simple("refresh", "Refreshed %s", (*control.Remote).Refresh)},
		{name: "export", args: "[flags] NAME", summary: "move a server's grant to another machine, sealed with the fleet key",
			about: "Moves, never copies: this machine stops refreshing the grant and forgets it (without revoking\n" +
				"it) once the sealed line is written, since two machines refreshing one grant get it revoked.\n" +
				"  authkeeper export NAME | ssh HOST authkeeper import\n" +
				"  authkeeper export NAME --out FILE     a new 0600 file; then `authkeeper import FILE` there\n" +
				"The line is ciphertext only the fleet key opens; it is never written to a terminal. Both\n" +
				"machines need the key (`authkeeper fleet keygen`). Not for a fleet's etcd store: it is shared.",
			run: cmdExport},
		{name: "import", args: "[flags] [FILE|-]", summary: "install a grant moved with `authkeeper export` (from stdin by default)",
			about: "Opens the line with the fleet key, adds the server (unless it is here for the same URL) and\n" +
				"refreshes its grant from now on. It refuses to overwrite credentials stored under the name\n" +
				"unless --replace. A line read from stdin that cannot be imported is kept, sealed, in a 0600\n" +
				"file under the state directory, so that it can be imported again once the cause is fixed.",
			run: cmdImport},
		{name: "fleet", args: "keygen [ID]", summary: "print a new fleet key line (ID default k1)",
			about: "The fleet key seals a fleet's records in etcd and grants moved with export/import. Store it\n" +
				"in a file only you can read (`authkeeper fleet keygen > fleet.key; chmod 600 fleet.key`) and\n" +
				"copy it to every machine out of band. To rotate: put the new line first, keep the old after it.",
			run: cmdFleet},
		{name: "busy", args: "start|end|run|list [flags] [-- COMMAND [ARGS...]]",
			summary: "hold refreshes while an agent turn runs",
			about: "  busy start --id ID [--ttl 30m] [--label TEXT]   hold refreshes until `busy end` or the TTL\n" +
				"  busy end --id ID                                 let them go\n" +
				"  busy run [--id ID] [--label TEXT] -- COMMAND     hold them while COMMAND runs\n" +
				"  busy list                                        the leases held now\n" +
				"With no authkeeper running there is nothing to defer: busy says so, and run runs COMMAND.",
			run: cmdBusy},
		{name: "bridge", args: "NAME", summary: "MCP over stdin/stdout for stdio-only clients (Claude Desktop)",
			about: "Only MCP messages go to stdout; diagnostics go to stderr, which clients show as the\n" +
				"server's log. Starts the engine for as long as it runs when none is running.",
			run: func(ctx context.Context, args []string, e env) error { return cmdBridge(ctx, args, e, os.Stdin) }},
		{name: "headers", args: "[NAME]", summary: `print {"Authorization": …} for Claude Code's headersHelper`,
			about: "NAME defaults to $CLAUDE_CODE_MCP_SERVER_NAME, which Claude Code sets.\n" +
				"Exit status: 0 with the JSON on stdout; 2 when the server needs a sign-in; 1 otherwise.",
			run: cmdHeaders},
		{name: "clients", args: "[flags] [NAME...]", summary: "print or write the MCP config of the agents (" + clientIDs() + ")",
			about: "Prints, for every supported client, the config that points it at the proxy for the named\n" +
				"servers (default: all); --write merges it into one client's file, keeping a backup (none when\n" +
				"nothing changes). The proxy address is the running authkeeper's; with none running, the settings'.",
			run: cmdClients},
		{name: "doctor", args: "[flags]", summary: "check the keychain, the owner, the proxy port, each server and the agents' configs",
			about: "Prints one line per check, ok, warn or FAIL, with the fix for what fails; changes nothing and\n" +
				"never prints a token or the proxy key.\n" +
				"Exit status: 0 when no check failed (warnings allowed); 1 when one did.",
			run: cmdDoctor},
		{name: "version", aliases: []string{"--version"}, summary: "print the version", run: cmdVersion},
		{name: "help", aliases: []string{"-h", "-help", "--help"}, args: "[COMMAND]",
			summary: "this overview, or a command's flags and environment", run: cmdHelp},
	}
}

// envVar is an environment variable the program reads.
type envVar struct {
	name string
	cmds []string // the commands that read it; nil: every command
	help string
}

// envVars are all the environment variables authkeeper reads; TestHelpListsEveryEnvironmentVariable
// finds them in the source and checks this list against them.
var envVars = []envVar{
	{"AUTHKEEPER_PROXY_ADDR", []string{"tray", "serve", "clients", "doctor"},
		"the proxy's loopback host:port (the default of --proxy-addr; else the settings' proxy_port, else 127.0.0.1:47615)"},
	{"AUTHKEEPER_STORE", []string{"tray", "serve", "doctor"},
		"the credential store: keychain, file, or a fleet's etcd://host:port,…/prefix (the default of --store)"},
	{envClientSecret, []string{"add"}, "the secret of --client-id (client_credentials, cross-app access, or a confidential client)"},
	{envToken, []string{"add"}, "a static token or API key (instead of --token-stdin)"},
	{envIDToken, []string{"add", "login"}, "your ID token from the identity provider, for cross-app access (instead of --id-token-stdin)"},
	{envIdPClientSecret, []string{"add"}, "with --cross-app: authkeeper's client secret at the identity provider"},
	{envFleetKeyFile, []string{"tray", "serve", "export", "import"}, "the fleet key file (the default of --fleet-key-file)"},
	{envFleetKey, []string{"tray", "serve", "export", "import"}, "the fleet key line(s) themselves, when no key file is named"},
	{envInstance, []string{"tray", "serve"}, "with an etcd store: this instance's name in the fleet (the default of --instance)"},
	{envCPUProfile, []string{"bridge"}, "a file the bridge writes a Go CPU profile of its whole run to (for `go tool pprof`; make bench uses it)"},
	{"CLAUDE_CODE_MCP_SERVER_NAME", []string{"headers"}, "the server NAME when none is given (Claude Code sets it)"},
	{"CLAUDE_CONFIG_DIR", []string{"clients", "doctor"}, "the directory of Claude Code's .claude.json (default: your home directory)"},
	{"COPILOT_HOME", []string{"clients", "doctor"}, "GitHub Copilot CLI's directory (default ~/.copilot)"},
	{"CODEX_HOME", []string{"clients", "doctor"}, "Codex's directory (default ~/.codex)"},
	{"DISPLAY, WAYLAND_DISPLAY, DBUS_SESSION_BUS_ADDRESS", []string{"tray"},
		"the desktop session: without a display the tray runs the headless engine; the keychain is reached over D-Bus"},
	{"JOURNAL_STREAM", []string{"tray", "serve"},
		"set by systemd: when it names the headless engine's stderr, its log lines leave the time to the journal"},
	{"LANGUAGE", nil, "messages are in English; when LANGUAGE is unset and LC_ALL, LC_MESSAGES or LANG name a C or " +
		"POSIX locale such as C.UTF-8, authkeeper sets LANGUAGE=en for its GUI toolkit"},
	{"XDG_CONFIG_HOME, XDG_STATE_HOME, XDG_RUNTIME_DIR, HOME, APPDATA", nil,
		"where authkeeper keeps its settings, audit log and control socket, and where the agents keep their config files"},
}

// lookup returns the command typed as name.
func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name || slices.Contains(c.aliases, name) {
			return c, true
		}
	}
	return command{}, false
}

// flagError is a command-line error found by parse: -h/--help (err is flag.ErrHelp) or a wrong flag.
// It carries the command's flags so that run can print its help.
type flagError struct {
	fs  *flag.FlagSet
	err error
}

func (f *flagError) Error() string { return f.err.Error() }
func (f *flagError) Unwrap() error { return f.err }

// dispatch runs the command typed as name and returns the exit status; it prints help on stdout, and
// errors and an unknown command's usage on stderr.
func dispatch(ctx context.Context, name string, args []string, e env) int {
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(e.stderr, "authkeeper: unknown command %q\n\n", name)
		writeOverview(ctx, e.stderr, e.getenv)
		return 2
	}
	err := c.run(ctx, args, e)
	var code exitCode
	var fe *flagError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	case errors.As(err, &fe) && errors.Is(err, flag.ErrHelp):
		writeCommandHelp(e.stdout, c, fe.fs)
		return 0
	case errors.As(err, &fe):
		fmt.Fprintf(e.stderr, "authkeeper %s: %v\nusage: %s\nRun `authkeeper help %s` for its flags.\n", fe.fs.Name(), fe.err, synopsis(c), c.name)
		return 2
	}
	fmt.Fprintln(e.stderr, "authkeeper:", err)
	return 1
}

func cmdVersion(_ context.Context, args []string, e env) error {
	if _, err := parse(newFlags("version", e), args); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "authkeeper", Version)
	return nil
}

// cmdHelp prints the overview, or with a command's name that command's help.
func cmdHelp(ctx context.Context, args []string, e env) error {
	pos, err := parse(newFlags("help", e), args)
	switch {
	case err != nil:
		return err
	case len(pos) == 0:
		writeOverview(ctx, e.stdout, e.getenv)
		return nil
	case len(pos) > 1:
		return errors.New("usage: authkeeper help [COMMAND]")
	}
	c, ok := lookup(pos[0])
	if !ok || pos[0] == "" {
		fmt.Fprintf(e.stderr, "authkeeper: no command %q; run `authkeeper help` for the list\n", pos[0])
		return exitCode(2)
	}
	fs := flagsOf(ctx, c, e.getenv)
	if fs == nil {
		return fmt.Errorf("help %s: the command does not parse --help", c.name)
	}
	writeCommandHelp(e.stdout, c, fs)
	return nil
}

// flagsOf returns the command's flags, by running it with --help (see command's contract), or nil.
func flagsOf(ctx context.Context, c command, getenv func(string) string) *flag.FlagSet {
	quiet := env{stdout: io.Discard, stderr: io.Discard, getenv: getenv}
	var fe *flagError
	if err := c.run(ctx, []string{"--help"}, quiet); errors.As(err, &fe) {
		return fe.fs
	}
	return nil
}

func synopsis(c command) string {
	return strings.TrimSpace("authkeeper " + c.name + " " + c.args)
}

// writeOverview prints `authkeeper help`: every command with its flags, and every environment variable.
func writeOverview(ctx context.Context, w io.Writer, getenv func(string) string) {
	fmt.Fprint(w, "usage: authkeeper [COMMAND] [flags] [ARGS]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %-9s %s", c.name, c.args), " "))
		fmt.Fprintf(w, "            %s\n", c.summary)
		var names []string
		if fs := flagsOf(ctx, c, getenv); fs != nil {
			fs.VisitAll(func(f *flag.Flag) { names = append(names, "--"+f.Name) })
		}
		if len(names) > 0 {
			fmt.Fprint(w, hang(strings.Join(names, " "), "            flags: ", "                   ", 100))
		}
	}
	fmt.Fprint(w, "\nRun `authkeeper help COMMAND` or `authkeeper COMMAND --help` for a command's flags.\n\nEnvironment:\n")
	for _, v := range envVars {
		writeEnv(w, v)
	}
	fmt.Fprint(w, "\nSecrets are never taken from the command line: from the environment, stdin or a file only.\n")
}

// writeCommandHelp prints a command's help: its synopsis, what it does, its flags and the environment
// variables it reads.
func writeCommandHelp(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s\n\n%s%s.\n", synopsis(c), strings.ToUpper(c.summary[:1]), c.summary[1:])
	if c.about != "" {
		fmt.Fprintf(w, "%s\n", c.about)
	}
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprint(w, "\nFlags:\n")
			first = false
		}
		arg, text := flag.UnquoteUsage(f)
		fmt.Fprintln(w, strings.TrimRight("  --"+f.Name+" "+arg, " "))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			text += " (default " + f.DefValue + ")"
		}
		fmt.Fprint(w, wrap(text, "        ", 100))
	})
	first = true
	for _, v := range envVars {
		if slices.Contains(v.cmds, c.name) {
			if first {
				fmt.Fprint(w, "\nEnvironment:\n")
				first = false
			}
			writeEnv(w, v)
		}
	}
}

func writeEnv(w io.Writer, v envVar) {
	fmt.Fprintf(w, "  %s\n%s", v.name, wrap(v.help, "        ", 100))
}

// wrap breaks text into lines of at most width columns (a longer word stands alone), each after indent.
func wrap(text, indent string, width int) string {
	return hang(text, indent, indent, width)
}

// hang is wrap with the first line after first and the others after indent.
func hang(text, first, indent string, width int) string {
	var b strings.Builder
	line, empty := first, true
	for _, word := range strings.Fields(text) {
		switch {
		case empty:
		case len(line)+1+len(word) > width:
			b.WriteString(line + "\n")
			line = indent
		default:
			line += " "
		}
		line += word
		empty = false
	}
	return b.String() + line + "\n"
}
