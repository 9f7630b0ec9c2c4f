package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/oauth"
)

// JSON-RPC error codes of the proxy's own answers, in the range JSON-RPC 2.0 reserves for
// implementation-defined server errors (-32000 to -32099). Both stay clear of the codes the MCP SDKs
// use (-32000 connection closed, -32001 request timeout, -32002 resource not found, -32042 URL
// elicitation required).
const (
	// CodeAuthFailure: no valid token can be had for the server; data.type is "auth_failure".
	CodeAuthFailure = -32050
	// CodeProxyError: the proxy refused or could not forward the request (access denied, unknown
	// server, upstream unreachable, a redirect to another origin, a body too large).
	CodeProxyError = -32051
)

// Subtypes of an auth_failure.
const (
	SubtypeSignInRequired      = "sign_in_required"     // never signed in, signed out, or more scope needed
	SubtypeCredentialExpired   = "credential_expired"   // the grant expired or the AS refused the refresh
	SubtypeCredentialRevoked   = "credential_revoked"   // the server refused a token before its expiry
	SubtypeRateLimited         = "rate_limited"         // the AS answered 429; retryable
	SubtypeUpstreamUnavailable = "upstream_unavailable" // the AS cannot be reached; retryable
	SubtypeServerDisabled      = "server_disabled"      // the user turned the server off
	SubtypeKeychainUnavailable = "keychain_unavailable" // the keychain is locked or does not answer; retryable
	// SubtypeFleetUnavailable: no instance of the fleet renewed the token (the shared store has no
	// quorum, or the refresher is changing hands); retryable.
	SubtypeFleetUnavailable = "fleet_unavailable"
)

// Subtypes of a proxy_error.
const (
	SubtypeUpstreamUnreachable = "upstream_unreachable" // the MCP server cannot be reached; retryable
	SubtypeUpstreamRedirect    = "upstream_redirect"    // the server redirects; credentials never follow
	SubtypeBadURL              = "bad_url"              // the configured URL is not an http(s) URL
	SubtypeResourceMismatch    = "resource_mismatch"    // the URL is not the origin the tokens were issued for
	SubtypeInsecureURL         = "insecure_url"         // plain http to another host: no credential is sent
	SubtypeBodyTooLarge        = "body_too_large"       // the request body exceeds the proxy's limit
	// SubtypeBridge: the stdio bridge could not relay the call to the owner's proxy; retryable.
	SubtypeBridge = "bridge"
)

// ErrorData is the `data` member of the proxy's JSON-RPC errors: what an agent may branch on and what
// the human should do.
type ErrorData struct {
	Type       string   `json:"type"`              // auth_failure | access_denied | not_configured | proxy_error
	Subtype    string   `json:"subtype,omitempty"` // see the Subtype constants
	Retryable  bool     `json:"retryable"`         // the same call may succeed later without the user
	RetryAfter int      `json:"retry_after_seconds,omitempty"`
	Server     string   `json:"server,omitempty"`
	Action     string   `json:"action"`           // the one thing that fixes it, for the human
	Scopes     []string `json:"scopes,omitempty"` // step-up: the scopes the next sign-in asks for
}

type rpcError struct {
	Code    int       `json:"code"`
	Message string    `json:"message"`
	Data    ErrorData `json:"data"`
	// status answers a request that carries no JSON-RPC call to attach the error to (GET, DELETE, a
	// notification or response); calls are answered 200 with the error under their id.
	status int
}

type RPCResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   rpcError        `json:"error"`
}

var jsonNull = json.RawMessage("null")

// answer answers r with e. A POST carrying JSON-RPC calls gets 200 and an error response per call, under
// the call's id, so the agent's call fails with the reason while its session lives on (every MCP client
// keeps the session on a JSON-RPC error; some end it, or start their own OAuth, on an HTTP 401/403/404).
// A batch gets an array. Anything else — GET, DELETE, a body of notifications or responses — gets
// e.status with one error without id.
func answer(w http.ResponseWriter, r *http.Request, body []byte, e rpcError) {
	if r.Method == http.MethodPost {
		if ids, batch := callIDs(body); len(ids) > 0 {
			out := make([]RPCResponse, len(ids))
			for i, id := range ids {
				out[i] = RPCResponse{JSONRPC: "2.0", ID: id, Error: e}
			}
			if batch {
				writeRPC(w, http.StatusOK, e, out)
			} else {
				writeRPC(w, http.StatusOK, e, out[0])
			}
			return
		}
	}
	writeRPCError(w, e.status, nil, e)
}

func writeRPCError(w http.ResponseWriter, status int, id json.RawMessage, e rpcError) {
	if id == nil {
		id = jsonNull
	}
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	writeRPC(w, status, e, RPCResponse{JSONRPC: "2.0", ID: id, Error: e})
}

func writeRPC(w http.ResponseWriter, status int, e rpcError, v any) {
	data, err := json.Marshal(v)
	if err != nil { // cannot happen: every field marshals
		http.Error(w, "authkeeper: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	if e.Data.RetryAfter > 0 && status != http.StatusOK {
		h.Set("Retry-After", strconv.Itoa(e.Data.RetryAfter))
	}
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// callIDs returns the ids of the JSON-RPC calls in body (a message or a batch); notifications and
// responses have none. Only error paths parse bodies.
func callIDs(body []byte) (ids []json.RawMessage, batch bool) {
	heads, batch, _ := rpcHeads(body)
	for _, h := range heads {
		if h.Method != "" && h.ID != nil {
			ids = append(ids, h.ID)
		}
	}
	return ids, batch
}

// rpcHead is what the proxy reads of one JSON-RPC message: its id and method.
type rpcHead struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
}

// rpcHeads parses body as one JSON-RPC message or a batch of them; ok is false when it is neither
// (batch still says whether it began as an array).
func rpcHeads(body []byte) (heads []rpcHead, batch, ok bool) {
	body = bytes.TrimSpace(body)
	if batch = len(body) > 0 && body[0] == '['; batch {
		if json.Unmarshal(body, &heads) != nil {
			return nil, true, false
		}
		return heads, true, true
	}
	var h rpcHead
	if json.Unmarshal(body, &h) != nil {
		return nil, false, false
	}
	return []rpcHead{h}, false, true
}

// authFailure builds the error for a server whose keeper could not hand out a token (err is what
// Token or Rejected returned). The keeper's state, not the error's text, picks the subtype.
func authFailure(k Upstream, err error) rpcError {
	st := k.Status()
	name := st.Name
	signIn := fmt.Sprintf("Open authkeeper and click “Sign in again” for %s, or run `authkeeper login %s`; the agent's next call then works without a restart.", name, name)
	d := ErrorData{Type: "auth_failure", Server: name, Action: signIn}
	var msg string
	if errors.Is(err, engine.ErrCredentialsUnreadable) {
		d.Subtype, d.Retryable, d.RetryAfter = SubtypeKeychainUnavailable, true, int(engine.KeychainRetry.Seconds())
		msg = "the credentials are in the keychain, which is locked or does not answer"
		d.Action = fmt.Sprintf("Unlock the keychain (log in to the desktop again, or open Passwords and Keys), or start its service if the message says it is missing; authkeeper reads it again within %d s, and the call then works with no sign-in.", d.RetryAfter)
		return rpcError{Code: CodeAuthFailure, Message: "authkeeper: " + name + ": " + msg + ": " + st.Message, Data: d, status: http.StatusServiceUnavailable}
	}
	if errors.Is(err, engine.ErrNoRefresher) {
		d.Subtype, d.Retryable, d.RetryAfter = SubtypeFleetUnavailable, true, 5
		d.Action = "Nothing to click: the fleet's instances take the refresh over by themselves once its etcd cluster has a quorum; retry the call shortly."
		return rpcError{Code: CodeAuthFailure, Message: "authkeeper: " + name + ": " + err.Error(), Data: d, status: http.StatusServiceUnavailable}
	}
	switch st.State {
	case engine.StateRevoked:
		d.Subtype = SubtypeCredentialRevoked
		msg = "the server refused the credentials and they could not be renewed"
	case engine.StateNeedsSignIn:
		d.Subtype, msg = SubtypeSignInRequired, "sign-in required"
		if st.Last.Outcome.ASRefused() && st.Last.Trigger != engine.TriggerSignIn {
			d.Subtype, msg = SubtypeCredentialExpired, "the credentials expired and the authorization server refused to renew them"
		}
		if scopes := k.Scopes(); st.Cause == engine.CauseStepUp {
			d.Scopes = scopes
			msg = "the server needs more scope than was granted"
			d.Action = fmt.Sprintf("Open authkeeper and click “Sign in again” for %s to grant %s, or run `authkeeper login %s`; the agent's next call then works without a restart.", name, strings.Join(scopes, " "), name)
		}
	case engine.StateDisabled:
		d.Subtype, msg = SubtypeServerDisabled, "the server is turned off in authkeeper"
		d.Action = "Turn " + name + " back on in authkeeper."
	default:
		d.Retryable = true
		var oe *oauth.Error
		if errors.As(err, &oe) && oe.Status == http.StatusTooManyRequests {
			d.Subtype, msg = SubtypeRateLimited, "the authorization server is rate-limiting token requests"
			d.RetryAfter = max(1, int(math.Ceil(oe.RetryAfter.Seconds())))
			d.Action = fmt.Sprintf("Nothing to click: authkeeper retries by itself; retry the call in %d s.", d.RetryAfter)
		} else {
			d.Subtype, msg = SubtypeUpstreamUnavailable, "the authorization server cannot be reached to renew the credentials"
			d.RetryAfter = 5
			d.Action = "Check the network connection; authkeeper keeps retrying and the call can be retried shortly."
		}
	}
	if st.Message != "" {
		msg += ": " + st.Message
	} else if err != nil && !errors.Is(err, context.Canceled) {
		msg += ": " + err.Error()
	}
	return rpcError{Code: CodeAuthFailure, Message: "authkeeper: " + name + ": " + msg, Data: d, status: http.StatusServiceUnavailable}
}

// proxyFailure is a proxy_error for one server: the proxy could not forward the call.
type proxyFailure struct {
	Server    string
	Subtype   string // one of the proxy_error Subtype constants
	Message   string // what went wrong, for the agent's log
	Action    string // the one thing that fixes it, for the human
	Status    int    // the HTTP status of an answer that carries no JSON-RPC call
	Retryable bool   // the same call may succeed later without the user
}

func (f proxyFailure) rpc() rpcError {
	return rpcError{Code: CodeProxyError, Message: "authkeeper: " + f.Server + ": " + f.Message, status: f.Status,
		Data: ErrorData{Type: "proxy_error", Subtype: f.Subtype, Retryable: f.Retryable, Server: f.Server, Action: f.Action}}
}
