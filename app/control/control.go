// Package control is the control API — HTTP over a unix socket only the user can open, or on Windows
// over a named pipe only the user can open — and its client, Remote: the CLI, the stdio bridge, the
// headers helper and a second tray launch reach the process that owns the credentials through it.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/authkeeper/authkeeper/oauth"
)

// The control API is HTTP over a unix socket that only the user can open (0600 in a 0700 directory),
// or on Windows over a named pipe whose DACL admits only the user (transport_windows.go): the CLI, the
// stdio bridge, the headers helper and a second tray launch reach the owner through it. It hands out
// tokens, so it is never on TCP.

// ProxyInfo is what GET /v1/proxy returns: where the owner's proxy listens and its access key.
type ProxyInfo struct {
	URL string `json:"url"`
	Key string `json:"key"`
	// Receipts is true when the proxy answers proxy.ReceiptHeader with a receipt before it forwards a
	// request. An owner from before receipts leaves it false: a bridge then falls back to
	// `Expect: 100-continue` to know whether a failed request may have been forwarded.
	Receipts bool `json:"receipts,omitempty"`
}

// TokenResponse is what GET /v1/servers/{name}/token returns.
type TokenResponse struct {
	AccessToken string    `json:"access_token"`
	Expiry      time.Time `json:"expiry,omitzero"`
}

// FrontEnd opens the control API's listener, private to the user, at e.ControlAddr() and returns its
// handler; the engine serves it until Close (see Config.Control). The engine holds the owner lock when
// it calls this, so a socket file left behind belongs to a dead owner and is removed (a Windows pipe
// dies with its process and leaves nothing behind).
func FrontEnd(e *engine.Engine) (net.Listener, http.Handler, error) {
	l, err := listen(e.ControlAddr())
	if err != nil {
		return nil, nil, err
	}
	return l, controlHandler(e), nil
}

func controlHandler(e *engine.Engine) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, e.Health())
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, e.Snapshot())
	})
	mux.HandleFunc("GET /v1/proxy", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, ProxyInfo{URL: e.ProxyURL(), Key: e.ProxyKey(), Receipts: true})
	})
	mux.HandleFunc("POST /v1/handover", func(w http.ResponseWriter, r *http.Request) {
		if !e.Temporary() {
			writeJSON(w, http.StatusConflict, errorBody{Error: "this authkeeper is the app, not a temporary owner", Code: CodeNotTemporary})
			return
		}
		for _, st := range e.Snapshot().Servers {
			if st.Unsaved {
				// Its newest refresh token is only in this process: the next owner would load the one the AS
				// already rotated away, and replaying it revokes the grant. The app asks again.
				writeJSON(w, http.StatusConflict, errorBody{Error: st.Name + "'s newest token is not saved to the keychain yet (is the keychain locked?)", Code: CodeUnsaved})
				return
			}
		}
		writeJSON(w, http.StatusOK, Accepted{Status: "handing over"})
		// After the answer: closing the engine shuts this server down, which waits for this request.
		go e.Handover()
	})
	mux.HandleFunc("POST /v1/ui/show", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Shown{Shown: e.Show()})
	})
	mux.HandleFunc("POST /v1/busy", func(w http.ResponseWriter, r *http.Request) {
		var req BusyRequest
		if !decode(w, r, &req) {
			return
		}
		l, err := e.Busy().Start(req.ID, req.Label, time.Duration(req.TTL*float64(time.Second)))
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, l)
	})
	mux.HandleFunc("DELETE /v1/busy/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, BusyEnded{Ended: e.Busy().End(r.PathValue("id"))})
	})
	mux.HandleFunc("GET /v1/servers/{name}/token", func(w http.ResponseWriter, r *http.Request) {
		tok, err := e.Token(r.Context(), r.PathValue("name"))
		if err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, TokenResponse{AccessToken: tok})
	})
	mux.HandleFunc("POST /v1/servers/{name}/refresh", func(w http.ResponseWriter, r *http.Request) {
		reply(w, e.Refresh(r.Context(), r.PathValue("name"), "user"))
	})
	mux.HandleFunc("POST /v1/servers/{name}/logout", func(w http.ResponseWriter, r *http.Request) {
		reply(w, e.Logout(r.Context(), r.PathValue("name")))
	})
	mux.HandleFunc("DELETE /v1/servers/{name}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, e.Remove(r.Context(), r.PathValue("name")))
	})
	mux.HandleFunc("POST /v1/servers/{name}/login", func(w http.ResponseWriter, r *http.Request) {
		// A cross-app access server's new ID token travels only here, in the body.
		var req LoginBody
		if !decode(w, r, &req) {
			return
		}
		stream(w, func(p progress) error {
			return e.SignInWith(r.Context(), r.PathValue("name"), engine.SignInRequest{Device: req.Device, IDToken: req.IDToken,
				OnDevice: p.device, OnURL: p.url})
		})
	})
	// Moving a grant to another machine (see engine.ExportBegin): the record travels in these bodies
	// only, over the user-only socket or pipe; the CLI seals it before it goes anywhere else.
	mux.HandleFunc("POST /v1/servers/{name}/export", func(w http.ResponseWriter, r *http.Request) {
		t, err := e.ExportBegin(r.Context(), r.PathValue("name"))
		if err != nil {
			writeErr(w, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, t)
	})
	mux.HandleFunc("POST /v1/servers/{name}/export/commit", func(w http.ResponseWriter, r *http.Request) {
		reply(w, e.ExportCommit(r.PathValue("name")))
	})
	mux.HandleFunc("POST /v1/servers/{name}/export/abort", func(w http.ResponseWriter, r *http.Request) {
		var req ExportAbortBody
		if !decode(w, r, &req) {
			return
		}
		if req.Server.Name != r.PathValue("name") {
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "the server in the body is not the one in the path", Code: CodeBadRequest})
			return
		}
		reply(w, e.ExportAbort(req.Server))
	})
	mux.HandleFunc("POST /v1/import", func(w http.ResponseWriter, r *http.Request) {
		var req ImportBody
		if !decode(w, r, &req) {
			return
		}
		st, err := e.Import(r.Context(), engine.ImportRequest{Transfer: engine.Transfer{Server: req.Server, Record: req.Record},
			Replace: req.Replace, From: req.From})
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /v1/servers", func(w http.ResponseWriter, r *http.Request) {
		// The client secrets, private key, ID token and static token travel only here, in the body, over
		// the user-only socket or pipe: never on a command line, in a URL or in a log.
		var req AddBody
		if !decode(w, r, &req) {
			return
		}
		add := req.Request()
		stream(w, func(p progress) error {
			add.OnDevice, add.OnURL = p.device, p.url
			return e.Add(r.Context(), add)
		})
	})
	return mux
}

// StreamLine is one line of a streamed (NDJSON) control reply: sign-ins report the device code or the
// authorization URL first (once discovery and registration succeeded), then the outcome.
type StreamLine struct {
	Device *DeviceCode `json:"device,omitempty"`
	// SignInURL is the authorization URL the browser is being asked to open, for the user to open by
	// hand if it does not.
	SignInURL string     `json:"sign_in_url,omitempty"`
	Done      bool       `json:"done,omitempty"`
	Error     *errorBody `json:"error,omitempty"`
}

// DeviceCode is what the user needs to complete a device sign-in elsewhere.
type DeviceCode struct {
	UserCode                string    `json:"user_code"`
	VerificationURI         string    `json:"verification_uri"`
	VerificationURIComplete string    `json:"verification_uri_complete,omitempty"`
	Expires                 time.Time `json:"expires,omitzero"`
}

// progress is what a streamed sign-in reports before its outcome.
type progress struct {
	device func(*oauth.DeviceAuthorization)
	url    func(string)
}

// stream runs a sign-in and writes NDJSON progress — a device code or an authorization URL line if
// there is one — then the result.
func stream(w http.ResponseWriter, run func(progress) error) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flusher, _ := w.(http.Flusher)
	var mu sync.Mutex // the OAuth client may report from its own goroutine
	send := func(l StreamLine) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(l)
		if flusher != nil {
			flusher.Flush()
		}
	}
	err := run(progress{
		device: func(d *oauth.DeviceAuthorization) {
			send(StreamLine{Device: &DeviceCode{UserCode: d.UserCode, VerificationURI: d.VerificationURI,
				VerificationURIComplete: d.VerificationURIComplete, Expires: d.ExpiresAt}})
		},
		url: func(u string) { send(StreamLine{SignInURL: u}) },
	})
	line := StreamLine{Done: err == nil}
	if err != nil {
		_, ce := classifyErr(err)
		line.Error = &ce
	}
	send(line)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "bad request body: " + err.Error(), Code: CodeBadRequest})
		return false
	}
	return true
}

func reply(w http.ResponseWriter, err error) {
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Accepted{OK: true})
}

// classifyErr maps an engine error onto an HTTP status and a code clients branch on.
func classifyErr(err error) (int, errorBody) {
	ce := errorBody{Error: err.Error(), Code: CodeFailed}
	status := http.StatusBadGateway
	switch {
	case errors.Is(err, engine.ErrBadLease):
		status, ce.Code = http.StatusBadRequest, CodeBadRequest
	case errors.Is(err, engine.ErrUnknownServer):
		status, ce.Code = http.StatusNotFound, CodeUnknownServer
	case errors.Is(err, engine.ErrServerExists):
		status, ce.Code = http.StatusConflict, CodeExists
	case errors.Is(err, engine.ErrHasCredentials):
		status, ce.Code = http.StatusConflict, CodeHasCredentials
	case errors.Is(err, engine.ErrURLMismatch):
		status, ce.Code = http.StatusConflict, CodeURLMismatch
	case errors.Is(err, engine.ErrSharedStore):
		status, ce.Code = http.StatusConflict, CodeSharedStore
	case errors.Is(err, engine.ErrNothingToRefresh):
		status, ce.Code = http.StatusConflict, CodeNothingToRefresh
	case errors.Is(err, engine.ErrNeedsSignIn), errors.Is(err, oauth.ErrReauthRequired):
		status, ce.Code = http.StatusUnauthorized, CodeNeedsSignIn
	case errors.Is(err, keychain.ErrUnavailable), errors.Is(err, keychain.ErrLocked):
		status, ce.Code = http.StatusServiceUnavailable, CodeKeychain
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		status, ce.Code = http.StatusGatewayTimeout, CodeTimeout
	}
	return status, ce
}

func writeErr(w http.ResponseWriter, err error) {
	status, ce := classifyErr(err)
	writeJSON(w, status, ce)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// AddBody is the body of POST /v1/servers (see cmdAdd). Secrets only ever travel in it.
type AddBody struct {
	Name              string            `json:"name"`
	URL               string            `json:"url"`
	ClientID          string            `json:"client_id"`
	Secret            string            `json:"client_secret"`
	Key               string            `json:"client_key"` // PEM private key for private_key_jwt
	KeyID             string            `json:"client_key_id"`
	Port              int               `json:"redirect_port"`
	Device            bool              `json:"device"`
	Scopes            []string          `json:"scopes"`
	Params            map[string]string `json:"params"`
	AssumePKCE        bool              `json:"assume_pkce"`
	ClientCredentials bool              `json:"client_credentials"`
	Token             string            `json:"token"` // a static token or API key
	TokenExpires      time.Time         `json:"token_expires,omitzero"`
	// CrossApp signs in through the identity provider below (cross-app access).
	CrossApp         bool   `json:"cross_app"`
	IdPTokenEndpoint string `json:"idp_token_endpoint"`
	IdPClientID      string `json:"idp_client_id"`
	IdPSecret        string `json:"idp_client_secret"`
	IDToken          string `json:"id_token"` // the user's ID token from the IdP
}

// LoginBody is the body of POST /v1/servers/{name}/login (see cmdLogin).
type LoginBody struct {
	Device  bool   `json:"device"`
	IDToken string `json:"id_token,omitempty"` // a new ID token, for a cross-app access server
}

func (b AddBody) Request() engine.AddRequest {
	add := engine.AddRequest{Name: b.Name, URL: b.URL, Device: b.Device, Scopes: b.Scopes, Params: b.Params,
		AssumePKCE: b.AssumePKCE, ClientCredentials: b.ClientCredentials, StaticToken: b.Token, StaticExpiry: b.TokenExpires}
	if b.ClientID != "" {
		add.Client = &oauth.StaticClient{ID: b.ClientID, Secret: b.Secret, RedirectPort: b.Port, PrivateKey: b.Key, KeyID: b.KeyID}
	}
	if b.CrossApp {
		add.IdP = &oauth.EnterpriseIdP{IDToken: b.IDToken, TokenEndpoint: b.IdPTokenEndpoint, ClientID: b.IdPClientID, ClientSecret: b.IdPSecret}
	}
	return add
}
