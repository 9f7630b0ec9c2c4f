package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/keychain"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Remote is a client of the owner's control API. Safe for concurrent use.
type Remote struct {
	addr func() string // the control address to dial, asked at every connection
	http *http.Client
}

// NewRemote returns a client for the control API at addr: a unix socket's path, or on Windows a named
// pipe's name (engine.OwnerSocket, Engine.ControlAddr). On Windows it talks only to a pipe the user
// owns, so that another user who created that pipe name never receives a request.
func NewRemote(addr string) *Remote { return newRemote(func() string { return addr }) }

// NewOwnerRemote returns a client of whichever process owns p's credentials when it connects: every
// connection dials the address the owner recorded (engine.OwnerSocket), so the client follows an
// owner that restarted or handed over — on Windows every owner's pipe has a name of its own.
func NewOwnerRemote(p engine.Paths) *Remote {
	return newRemote(func() string { return engine.OwnerSocket(p) })
}

func newRemote(addr func() string) *Remote {
	return &Remote{addr: addr, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dial(ctx, addr())
		},
	}}}
}

// RemoteError is a failed control call; Code says what went wrong (see the Code constants).
type RemoteError struct {
	Status  int
	Code    Code
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// Is lets callers test remote errors against the engine's sentinels.
func (e *RemoteError) Is(target error) bool {
	switch target {
	case engine.ErrNeedsSignIn:
		return e.Code == CodeNeedsSignIn
	case engine.ErrUnknownServer:
		return e.Code == CodeUnknownServer
	case engine.ErrServerExists:
		return e.Code == CodeExists
	case engine.ErrHasCredentials:
		return e.Code == CodeHasCredentials
	case engine.ErrURLMismatch:
		return e.Code == CodeURLMismatch
	case engine.ErrSharedStore:
		return e.Code == CodeSharedStore
	}
	return false
}

// ErrNoAnswer means a call got no answer at the control address: no owner listens there (none runs,
// or it is handing over to the next), or it went away before it answered. Callers that wait for the
// next owner branch on it.
var ErrNoAnswer = errors.New("authkeeper is not running")

// unreachable is the error for a call that got no answer: ErrNoAnswer, unless the one listening is
// not the user's own (ErrNotYours), which must not pass for an owner that is merely absent.
func (r *Remote) unreachable(err error) error {
	if errors.Is(err, ErrNotYours) {
		return fmt.Errorf("control API: %w", err)
	}
	return fmt.Errorf("%w (no answer on %s)", ErrNoAnswer, r.addr())
}

func (r *Remote) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://authkeeper"+path, rd)
	if err != nil {
		return err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return r.unreachable(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("control API: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var ce errorBody
		if json.Unmarshal(data, &ce) != nil || ce.Error == "" {
			ce = errorBody{Error: fmt.Sprintf("control API: HTTP %d", resp.StatusCode), Code: CodeFailed}
		}
		return &RemoteError{Status: resp.StatusCode, Code: ce.Code, Message: ce.Error}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("control API: decode %s: %w", path, err)
		}
	}
	return nil
}

// Health returns /healthz.
func (r *Remote) Health(ctx context.Context) (engine.Health, error) {
	var h engine.Health
	return h, r.do(ctx, http.MethodGet, "/healthz", nil, &h)
}

// Status returns the owner's snapshot.
func (r *Remote) Status(ctx context.Context) (engine.Snapshot, error) {
	var s engine.Snapshot
	return s, r.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Proxy returns where the owner's proxy listens and its access key.
func (r *Remote) Proxy(ctx context.Context) (ProxyInfo, error) {
	var p ProxyInfo
	return p, r.do(ctx, http.MethodGet, "/v1/proxy", nil, &p)
}

// Handover asks a temporary owner to end its engine and release the owner lock (see
// Config.Temporary); it returns once the owner accepted. Wait for the lock to be free before owning.
func (r *Remote) Handover(ctx context.Context) error {
	return r.do(ctx, http.MethodPost, "/v1/handover", nil, nil)
}

// Show asks the owner to show its status window and reports whether it has one (a tray).
func (r *Remote) Show(ctx context.Context) (bool, error) {
	var out Shown
	return out.Shown, r.do(ctx, http.MethodPost, "/v1/ui/show", nil, &out)
}

// Token returns a valid access token for server name.
func (r *Remote) Token(ctx context.Context, name string) (TokenResponse, error) {
	var t TokenResponse
	return t, r.do(ctx, http.MethodGet, "/v1/servers/"+url.PathEscape(name)+"/token", nil, &t)
}

// BusyStart takes or renews a busy lease.
func (r *Remote) BusyStart(ctx context.Context, id, label string, ttl time.Duration) (engine.Lease, error) {
	var l engine.Lease
	body := BusyRequest{ID: id, Label: label, TTL: ttl.Seconds()}
	return l, r.do(ctx, http.MethodPost, "/v1/busy", body, &l)
}

// BusyEnd releases a busy lease and reports whether it was held.
func (r *Remote) BusyEnd(ctx context.Context, id string) (bool, error) {
	var out BusyEnded
	return out.Ended, r.do(ctx, http.MethodDelete, "/v1/busy/"+url.PathEscape(id), nil, &out)
}

// Refresh forces a refresh of server name.
func (r *Remote) Refresh(ctx context.Context, name string) error {
	return r.do(ctx, http.MethodPost, "/v1/servers/"+url.PathEscape(name)+"/refresh", nil, nil)
}

// Logout revokes and forgets server name's tokens.
func (r *Remote) Logout(ctx context.Context, name string) error {
	return r.do(ctx, http.MethodPost, "/v1/servers/"+url.PathEscape(name)+"/logout", nil, nil)
}

// Remove removes server name.
func (r *Remote) Remove(ctx context.Context, name string) error {
	return r.do(ctx, http.MethodDelete, "/v1/servers/"+url.PathEscape(name), nil, nil)
}

// ExportBegin stops refreshing server name at the owner and returns its settings and credentials,
// to move them to another machine; finish with ExportCommit, or ExportAbort (see engine.ExportBegin).
func (r *Remote) ExportBegin(ctx context.Context, name string) (engine.Transfer, error) {
	var t engine.Transfer
	return t, r.do(ctx, http.MethodPost, "/v1/servers/"+url.PathEscape(name)+"/export", nil, &t)
}

// ExportCommit completes a move: the owner deletes server name's credentials without revoking them.
func (r *Remote) ExportCommit(ctx context.Context, name string) error {
	return r.do(ctx, http.MethodPost, "/v1/servers/"+url.PathEscape(name)+"/export/commit", nil, nil)
}

// ExportAbort undoes ExportBegin: srv is configured again and refreshed at the owner.
func (r *Remote) ExportAbort(ctx context.Context, srv keychain.Server) error {
	return r.do(ctx, http.MethodPost, "/v1/servers/"+url.PathEscape(srv.Name)+"/export/abort", ExportAbortBody{Server: srv}, nil)
}

// Import installs a grant moved from another machine at the owner and returns the server's status.
func (r *Remote) Import(ctx context.Context, body ImportBody) (engine.ServerStatus, error) {
	var st engine.ServerStatus
	return st, r.do(ctx, http.MethodPost, "/v1/import", body, &st)
}

// SignInProgress receives what a sign-in reports before its outcome; either func may be nil.
type SignInProgress struct {
	// OnDevice receives a device code to show.
	OnDevice func(DeviceCode)
	// OnURL receives the authorization URL once discovery and registration succeeded, as the owner asks
	// the browser to open it.
	OnURL func(authURL string)
}

// Add adds a server (signing in first), reporting progress.
func (r *Remote) Add(ctx context.Context, body AddBody, p SignInProgress) error {
	return r.stream(ctx, "/v1/servers", body, p)
}

// Login signs server name in again, reporting progress.
func (r *Remote) Login(ctx context.Context, name string, body LoginBody, p SignInProgress) error {
	return r.stream(ctx, "/v1/servers/"+url.PathEscape(name)+"/login", body, p)
}

// stream posts body and reads NDJSON progress lines until the outcome.
func (r *Remote) stream(ctx context.Context, path string, body any, p SignInProgress) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://authkeeper"+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return r.unreachable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var ce errorBody
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&ce)
		return &RemoteError{Status: resp.StatusCode, Code: ce.Code, Message: ce.Error}
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var line StreamLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("control API: %w", err)
		}
		switch {
		case line.Device != nil:
			if p.OnDevice != nil {
				p.OnDevice(*line.Device)
			}
		case line.SignInURL != "":
			if p.OnURL != nil {
				p.OnURL(line.SignInURL)
			}
		case line.Error != nil:
			return &RemoteError{Code: line.Error.Code, Message: line.Error.Error}
		case line.Done:
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("control API: %w", err)
	}
	return errors.New("control API: the owner closed the stream without an outcome")
}
