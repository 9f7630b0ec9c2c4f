package control

// The control API's wire types, shared by the server (control.go) and its client (remote.go).

import "github.com/authkeeper/authkeeper/keychain"

// Code is what a failed control call says went wrong; clients branch on it (RemoteError.Code).
type Code string

// Error codes of the control API.
const (
	CodeUnknownServer    Code = "unknown_server"     // no server of that name is configured
	CodeExists           Code = "exists"             // a server of that name exists already
	CodeNothingToRefresh Code = "nothing_to_refresh" // the server has nothing to renew its token with
	CodeNeedsSignIn      Code = "needs_sign_in"      // only a sign-in helps
	CodeKeychain         Code = "keychain"           // the keychain is locked or does not answer
	CodeTimeout          Code = "timeout"            // the call ran out of time, or the caller went away
	CodeBadRequest       Code = "bad_request"        // the request body could not be read, or asks for something invalid
	CodeNotTemporary     Code = "not_temporary"      // a hand-over asked of the app itself
	CodeUnsaved          Code = "unsaved"            // a hand-over refused: a newest token is only in memory
	CodeHasCredentials   Code = "has_credentials"    // an import found credentials stored under the name
	CodeURLMismatch      Code = "url_mismatch"       // an import names a server configured here for another URL
	CodeSharedStore      Code = "shared_store"       // an export asked of a fleet instance: the grant is shared already
	CodeFailed           Code = "failed"             // anything else; the message says what
)

// errorBody is the body of every failed control call.
type errorBody struct {
	Error string `json:"error"`
	Code  Code   `json:"code"`
}

// BusyRequest is the body of POST /v1/busy: take or renew a busy lease.
type BusyRequest struct {
	ID    string  `json:"id"`
	Label string  `json:"label"`
	TTL   float64 `json:"ttl_seconds"` // 0: engine.DefaultLeaseTTL
}

// BusyEnded is the answer to DELETE /v1/busy/{id}.
type BusyEnded struct {
	Ended bool `json:"ended"` // the lease was held
}

// Shown is the answer to POST /v1/ui/show.
type Shown struct {
	Shown bool `json:"shown"` // the owner has a window to show (a tray)
}

// Accepted is the answer to calls that only succeed or fail (refresh, logout, remove, hand-over).
type Accepted struct {
	OK     bool   `json:"ok,omitempty"`
	Status string `json:"status,omitempty"` // hand-over: "handing over"
}

// ImportBody is the body of POST /v1/import: a grant moved from another machine (see
// engine.Import). Its Record is token material: it travels only here, over the user-only socket or
// pipe. The answer is the server's engine.ServerStatus.
type ImportBody struct {
	Server  keychain.Server `json:"server"`
	Record  keychain.Record `json:"record"`
	Replace bool            `json:"replace,omitempty"` // overwrite credentials stored under the name
	From    string          `json:"from,omitempty"`    // the machine it came from, for the event log
}

// ExportAbortBody is the body of POST /v1/servers/{name}/export/abort: the server as
// POST /v1/servers/{name}/export returned it, to configure again (see engine.ExportAbort).
type ExportAbortBody struct {
	Server keychain.Server `json:"server"`
}
