package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestHeadersHelperPrintsABearerTheServerAccepts runs `authkeeper headers` the way Claude Code runs a
// headersHelper, against an owner signed in to the real AS: stdout is exactly one JSON object whose
// Authorization header the real MCP server accepts; the name may come from
// CLAUDE_CODE_MCP_SERVER_NAME; an unknown name exits 1; with no engine running it serves by becoming
// the owner for a moment, printing nothing on stderr; a server that needs a sign-in exits 2 with one
// line on stderr; and no stderr ever carries the token.
func TestHeadersHelperPrintsABearerTheServerAccepts(t *testing.T) {
	b := newBench(t, benchOptions{Home: true})
	tok, err := b.eng.Token(context.Background(), "bench")
	if err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runCLI(t, "headers", "bench")
	if code != 0 {
		t.Fatalf("headers bench: exit %d, stderr %q", code, stderr)
	}
	var headers map[string]string
	if err := json.Unmarshal([]byte(stdout), &headers); err != nil || len(headers) != 1 || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("stdout is not one JSON object of one header (%v): %d bytes", err, len(stdout))
	}
	if headers["Authorization"] != "Bearer "+tok {
		t.Errorf("Authorization is not the owner's current bearer token")
	}
	// The real server accepts it: an initialize with that header is not refused.
	req, _ := http.NewRequest(http.MethodPost, b.srv.URL, strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", headers["Authorization"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the MCP server answered %d to the helper's header, want 200", resp.StatusCode)
	}

	good := stdout
	t.Setenv("CLAUDE_CODE_MCP_SERVER_NAME", "bench")
	if code, stdout2, stderr := runCLI(t, "headers"); code != 0 || stdout2 != good {
		t.Errorf("headers with CLAUDE_CODE_MCP_SERVER_NAME: exit %d, same output %v, stderr %q", code, stdout2 == good, stderr)
	}

	code, stdout, stderr = runCLI(t, "headers", "nosuch")
	if code != 1 || stdout != "" || !strings.Contains(stderr, `no server named "nosuch"`) {
		t.Errorf("unknown server: exit %d, stdout %q, stderr %q; want 1, nothing, a message", code, stdout, stderr)
	}

	// With no engine running, the helper becomes the owner for a moment, quietly.
	b.eng.Close()
	code, stdout2, stderr := runCLI(t, "headers", "bench")
	if code != 0 || stdout2 != good || stderr != "" {
		t.Errorf("headers with no engine running: exit %d, same token %v, stderr %q", code, stdout2 == good, stderr)
	}

	if code, _, stderr := runCLI(t, "logout", "bench"); code != 0 {
		t.Fatalf("logout: %d %s", code, stderr)
	}
	code, stdout, stderr = runCLI(t, "headers", "bench")
	if code != exitNeedsSignIn || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "authkeeper login bench") {
		t.Errorf("needs sign-in: exit %d, stdout %q, stderr %q; want 2, nothing, one line naming `authkeeper login bench`", code, stdout, stderr)
	}
	assertNoSecrets(t, "stderr", stderr, tok)
}
