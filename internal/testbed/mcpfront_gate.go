package testbed

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// mcpGate routes each request to the MCP endpoint to the handler that enforces what it needs: no
// token, a token (with MCPServerOptions.RequiredScopes), or, for tools/call, a token with the
// ToolCallScopes too. It reads a POST's JSON-RPC body to learn its methods, and hands the body on
// unchanged.
type mcpGate struct {
	open      http.Handler // the MCP handler itself, behind no authentication
	protected http.Handler // behind RequireBearerToken with RequiredScopes
	toolCall  http.Handler // behind RequireBearerToken with RequiredScopes+ToolCallScopes; nil if none
	methods   []string     // MCPServerOptions.ProtectedMethods; empty: every request is protected
}

func (g *mcpGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(g.methods) == 0 && g.toolCall == nil {
		g.protected.ServeHTTP(w, r)
		return
	}
	var methods []string
	if r.Method == http.MethodPost {
		var ok bool
		if methods, ok = peekMethods(w, r); !ok {
			return
		}
	}
	switch {
	case g.toolCall != nil && slices.Contains(methods, "tools/call"):
		g.toolCall.ServeHTTP(w, r)
	case len(g.methods) == 0, r.Header.Get("Authorization") != "":
		// A token sent where none is needed is still verified: a session opened with a user's token
		// stays bound to that user (the SDK's check), and a bad token gets its 401.
		g.protected.ServeHTTP(w, r)
	case slices.ContainsFunc(methods, func(m string) bool { return slices.Contains(g.methods, m) }):
		g.protected.ServeHTTP(w, r)
	default:
		g.open.ServeHTTP(w, r)
	}
}

// maxMCPBody bounds the JSON-RPC body the gate reads; the bench tools' arguments are tiny.
const maxMCPBody = 4 << 20

// peekMethods returns the JSON-RPC methods of a POST's body — one message, or each message of a
// batch — and puts the body back for the handler. A body that is not JSON-RPC yields no method (the
// SDK then answers it); a body over maxMCPBody is answered 413 here and ok is false.
func peekMethods(w http.ResponseWriter, r *http.Request) (methods []string, ok bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxMCPBody+1))
	r.Body.Close()
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return nil, false
	}
	if len(body) > maxMCPBody {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	type message struct {
		Method string `json:"method"`
	}
	var batch []message
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
		_ = json.Unmarshal(body, &batch)
	} else {
		var one message
		if json.Unmarshal(body, &one) == nil {
			batch = []message{one}
		}
	}
	for _, m := range batch {
		methods = append(methods, m.Method)
	}
	return methods, true
}

// bareChallenge gives a 401 that carries no WWW-Authenticate the bare `Bearer` challenge (RFC 6750
// §3) of a 2025-03-26 server: the SDK sends no header at all when it has neither a resource metadata
// URL nor scopes to name.
func bareChallenge(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&challengeWriter{ResponseWriter: w}, r)
	})
}

type challengeWriter struct{ http.ResponseWriter }

func (w *challengeWriter) WriteHeader(code int) {
	if code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *challengeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// RequestedScopes returns the scope values of an authorization request URL (as Browser.Opened
// records them) in order, duplicates kept, so that a test can tell whether a client repeated a scope
// when it stepped up. It returns nil for a URL without scope or one that does not parse.
func RequestedScopes(authURL string) []string {
	u, err := url.Parse(authURL)
	if err != nil {
		return nil
	}
	if scopes := strings.Fields(u.Query().Get("scope")); len(scopes) > 0 {
		return scopes
	}
	return nil
}
