package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/authkeeper/authkeeper/app/engine"
	"io"
)

// exitNeedsSignIn is the exit status of `authkeeper headers` when the server needs the user to sign
// in: distinct from 1 (a wrong name, no owner, a failure) so scripts can tell "ask the human" apart.
const exitNeedsSignIn = 2

// cmdHeaders runs `authkeeper headers [NAME]`, the headersHelper of Claude Code: it prints one JSON
// object of HTTP headers, {"Authorization": "Bearer …"}, with a token that is valid now. Claude Code
// runs the helper with CLAUDE_CODE_MCP_SERVER_NAME set, so NAME may be omitted.
//
// Exit status: 0 with the JSON on stdout; 2 when the server needs a sign-in (one line on stderr
// saying how); 1 for anything else (unknown server, no owner could start, …). Nothing else is
// printed on stdout, and the token appears nowhere but there.
func cmdHeaders(ctx context.Context, args []string, e env) error {
	fs := newFlags("headers", e)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var name string
	switch len(pos) {
	case 0:
		name = e.getenv("CLAUDE_CODE_MCP_SERVER_NAME")
		if name == "" {
			return errors.New("usage: authkeeper headers NAME (or set CLAUDE_CODE_MCP_SERVER_NAME)")
		}
	case 1:
		name = pos[0]
	default:
		return errors.New("usage: authkeeper headers [NAME]")
	}
	// The helper's stderr is one line at most: an owner started here would announce itself there.
	quiet := e
	quiet.stderr = io.Discard
	owner := &ownerLink{e: quiet}
	defer owner.close()
	r, err := owner.remote(ctx, false)
	if err != nil {
		return err
	}
	tok, err := r.Token(ctx, name)
	switch {
	case errors.Is(err, engine.ErrNeedsSignIn):
		fmt.Fprintf(e.stderr, "authkeeper: %s needs you to sign in: run `authkeeper login %s`\n", name, name)
		return exitCode(exitNeedsSignIn)
	case errors.Is(err, engine.ErrUnknownServer):
		return fmt.Errorf("no server named %q is configured (see `authkeeper status`)", name)
	case err != nil:
		return fmt.Errorf("headers for %s: %w", name, err)
	}
	headers := map[string]string{}
	if tok.AccessToken != "" { // a server without auth needs no header
		headers["Authorization"] = "Bearer " + tok.AccessToken
	}
	return json.NewEncoder(e.stdout).Encode(headers)
}
