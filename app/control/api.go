package control

// The control API's wire types, shared by the server (control.go) and its client (remote.go).

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
