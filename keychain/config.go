package keychain

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Settings is everything authkeeper keeps that is not secret. Tokens, client secrets and registration
// tokens never go here; they go to a Store.
type Settings struct {
	Servers []Server `json:"servers"`
	Prefs   Prefs    `json:"prefs"`
}

// Server is one MCP server the user added.
type Server struct {
	Name string `json:"name"` // unique; see ValidName
	URL  string `json:"url"`  // the MCP endpoint, absolute http(s)
	// ClientID is a pre-registered client id; empty means register dynamically.
	ClientID string `json:"client_id,omitempty"`
	// RefreshFraction is how far into a token's lifetime to refresh it, in (0, 1); 0 means the app's
	// default.
	RefreshFraction float64 `json:"refresh_fraction,omitempty"`
	// Scopes are requested on every sign-in in addition to the ones the server asks for, e.g. Entra's
	// "api://<app-id>/.default" or "offline_access". Default: none.
	Scopes []string `json:"scopes,omitempty"`
	// Params are extra parameters sent on the authorization request and on every token request, e.g.
	// Auth0's and Okta's "audience". They never replace one the protocol sets (see ReservedParam).
	// Default: none.
	Params map[string]string `json:"params,omitempty"`
	// AssumePKCE is the user's choice to sign in to an authorization server that does not advertise
	// PKCE S256 (S256 is sent anyway). Default false: such a server is refused unless it is known to
	// support it.
	AssumePKCE bool `json:"assume_pkce,omitempty"`
	// GrantType is how tokens are obtained: "" (a person signs in, in the browser or with a device
	// code), GrantClientCredentials (a machine identity: ClientID with a secret or private key kept
	// in the keychain; no browser, no refresh token) or GrantCrossAppAccess (through the user's
	// enterprise IdP, see IdPTokenEndpoint).
	GrantType string `json:"grant_type,omitempty"`
	// IdPTokenEndpoint and IdPClientID are, for GrantCrossAppAccess only, the user's enterprise IdP's
	// token endpoint (where the RFC 8693 token exchange happens) and authkeeper's client id at that
	// IdP. The IdP client's secret, if any, is kept in the keychain with the grant, and the user's ID
	// token is never kept. Default: none.
	IdPTokenEndpoint string `json:"idp_token_endpoint,omitempty"`
	IdPClientID      string `json:"idp_client_id,omitempty"`
}

// Server.GrantType values besides "".
const (
	// GrantClientCredentials is a machine identity (RFC 6749 §4.4).
	GrantClientCredentials = "client_credentials"
	// GrantCrossAppAccess is enterprise-managed authorization (MCP's cross-app access, SEP-990): the
	// user's IdP exchanges their ID token for an identity assertion, which the server's authorization
	// server redeems (RFC 7523 jwt-bearer) for ClientID.
	GrantCrossAppAccess = "cross_app_access"
)

// reservedParams are the parameters the OAuth client sets itself: a Server's Params must not name them,
// or a setting could silently weaken the protocol (PKCE, state, the redirect) or confuse the grant.
// It must hold exactly the names of oauth's reservedParams (oauth/tokenreq.go), which refuses them at
// sign-in; this package does not import oauth, so the list is repeated here, and
// TestReservedParametersAgreeBetweenTheSettingsAndTheOAuthClient (app) checks that both refuse the same.
var reservedParams = map[string]bool{
	"response_type": true, "client_id": true, "client_secret": true, "redirect_uri": true, "state": true,
	"code": true, "code_challenge": true, "code_challenge_method": true, "code_verifier": true,
	"grant_type": true, "refresh_token": true, "client_assertion": true, "client_assertion_type": true,
	"scope": true, "resource": true, "iss": true, "device_code": true, "nonce": true,
	// The token exchange and jwt-bearer grants of cross-app access.
	"assertion": true, "subject_token": true, "subject_token_type": true, "requested_token_type": true,
	// A JAR request object or a PAR request_uri replaces redirect_uri and the PKCE challenge, and another
	// response_mode sends the code where the loopback listener cannot read it.
	"request": true, "request_uri": true, "response_mode": true,
}

// ReservedParam reports whether name is a parameter the OAuth client sets itself (scope and resource
// included: scopes go in Server.Scopes, and the resource is the server's URL).
func ReservedParam(name string) bool { return reservedParams[strings.ToLower(name)] }

// Validate reports the first problem with one server's settings.
func (srv Server) Validate() error {
	if err := ValidName(srv.Name); err != nil {
		return err
	}
	u, err := url.Parse(srv.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("server %q: URL %q is not an absolute http(s) URL", srv.Name, srv.URL)
	}
	if srv.RefreshFraction < 0 || srv.RefreshFraction >= 1 {
		return fmt.Errorf("server %q: refresh fraction %v outside [0, 1)", srv.Name, srv.RefreshFraction)
	}
	for _, sc := range srv.Scopes {
		// RFC 6749 §3.3: scope tokens are printable ASCII without space, quote or backslash.
		if sc == "" || strings.ContainsFunc(sc, func(r rune) bool { return r <= ' ' || r > '~' || r == '"' || r == '\\' }) {
			return fmt.Errorf("server %q: scope %q is not a valid scope token", srv.Name, sc)
		}
	}
	for k, v := range srv.Params {
		switch {
		case k == "" || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r > '~' || r == '=' }):
			return fmt.Errorf("server %q: parameter name %q is not valid", srv.Name, k)
		case ReservedParam(k):
			return fmt.Errorf("server %q: parameter %q is set by authkeeper itself and cannot be overridden", srv.Name, k)
		case strings.ContainsFunc(v, func(r rune) bool { return r < ' ' }):
			return fmt.Errorf("server %q: parameter %q has a control character in its value", srv.Name, k)
		}
	}
	switch srv.GrantType {
	case "", GrantClientCredentials:
		if srv.GrantType == GrantClientCredentials && srv.ClientID == "" {
			return fmt.Errorf("server %q: the client_credentials grant needs a client id", srv.Name)
		}
		if srv.IdPTokenEndpoint != "" || srv.IdPClientID != "" {
			return fmt.Errorf("server %q: an identity provider goes only with the %s grant", srv.Name, GrantCrossAppAccess)
		}
	case GrantCrossAppAccess:
		if srv.ClientID == "" || srv.IdPClientID == "" {
			return fmt.Errorf("server %q: cross-app access needs a client id at the authorization server and one at the identity provider", srv.Name)
		}
		if u, err := url.Parse(srv.IdPTokenEndpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("server %q: identity provider token endpoint %q is not an absolute http(s) URL", srv.Name, srv.IdPTokenEndpoint)
		}
	default:
		return fmt.Errorf("server %q: grant type %q must be empty, %q or %q", srv.Name, srv.GrantType,
			GrantClientCredentials, GrantCrossAppAccess)
	}
	return nil
}

// Prefs are app-wide preferences. The zero value is not the default: use DefaultSettings.
type Prefs struct {
	Store         string `json:"store"`         // "keychain" (default), "file", or a fleet's "etcd://host:port/prefix"
	Notifications bool   `json:"notifications"` // default true
	StartAtLogin  bool   `json:"start_at_login"`
	ProxyPort     int    `json:"proxy_port,omitempty"` // 0: the app's default
	// ClientMetadataURL is the https URL where authkeeper's Client ID Metadata Document is hosted (see
	// docs/client-metadata.json); it is the client id at authorization servers that support such
	// documents. Default "": those servers register authkeeper dynamically instead.
	ClientMetadataURL string `json:"client_metadata_url,omitempty"`
	// FirstRunDone is set by the tray app's first start with a display, which opens the Add server
	// window when no server is configured; once set, that window never opens by itself again (the
	// user closed it, or a server exists). Default false.
	FirstRunDone bool `json:"first_run_done,omitempty"`
	// EventHook, when set, tells someone (a command, a webhook) that a grant needs a human: for a
	// headless fleet, where nobody sees the tray. Default nil: no hook.
	EventHook *EventHook `json:"event_hook,omitempty"`
}

// EventHook is the event hook's settings (see package app/hook): a command to run, a URL to POST to,
// or both.
type EventHook struct {
	// Command is run for each event, without a shell; argv[0] is looked up in PATH. Default: none.
	Command []string `json:"command,omitempty"`
	// URL receives each event as a JSON POST: https, or http to a loopback host (checked by the hook,
	// as this package does not judge hosts). Default: none.
	URL string `json:"url,omitempty"`
	// HeadersFile is the absolute path of a private file (see CheckPrivate) of "Name: value" lines
	// sent with each POST, e.g. a webhook secret, which so stays out of this file. Default: none.
	HeadersFile string `json:"headers_file,omitempty"`
	// DegradedAfter is how long, as a Go duration ("10m"), a server may stay degraded before the hook
	// fires. Default "": the hook's default, 10 minutes.
	DegradedAfter string `json:"degraded_after,omitempty"`
}

// Validate reports the first problem with the hook's settings that can be seen without reading a
// file or resolving a program: the headers file's privacy and the command's presence are checked
// when the hook starts, so that a file changed later does not make the whole config corrupt.
func (h EventHook) Validate() error {
	if len(h.Command) == 0 && h.URL == "" {
		return errors.New("event hook: set a command, a URL or both")
	}
	if len(h.Command) > 0 && h.Command[0] == "" {
		return errors.New("event hook: the command's first word (the program) is empty")
	}
	if h.URL != "" {
		// The URL is not echoed: chat webhooks carry their secret in it.
		if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return errors.New("event hook: the URL is not an absolute http(s) URL")
		}
	}
	if h.HeadersFile != "" && (h.URL == "" || !filepath.IsAbs(h.HeadersFile)) {
		return fmt.Errorf("event hook: headers file %q must be an absolute path, and goes with a URL", h.HeadersFile)
	}
	if h.DegradedAfter != "" {
		if d, err := time.ParseDuration(h.DegradedAfter); err != nil || d <= 0 {
			return fmt.Errorf("event hook: degraded_after %q is not a positive duration such as \"10m\"", h.DegradedAfter)
		}
	}
	return nil
}

// ValidClientMetadataURL reports why raw cannot be a Client ID Metadata Document URL
// (draft-ietf-oauth-client-id-metadata-document §3): it must be an absolute https URL with a path,
// without single- or double-dot path segments, a fragment or user info. A query, which the draft
// advises against, is refused too: the URL is the client id, compared as a string by the AS, and a
// query is one more way for two spellings of one document to differ.
func ValidClientMetadataURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("client metadata URL %q: %w", raw, err)
	case u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("client metadata URL %q must be an absolute https URL", raw)
	case u.Path == "" || u.Path == "/":
		return fmt.Errorf("client metadata URL %q must name a document (a path)", raw)
	case u.Fragment != "" || strings.Contains(raw, "#") || u.User != nil:
		return fmt.Errorf("client metadata URL %q must have no fragment and no user info", raw)
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("client metadata URL %q must have no query", raw)
	case hasDotSegment(u.Path):
		// u.Path is decoded, so %2e and %2E spellings are caught as well.
		return fmt.Errorf("client metadata URL %q must have no \".\" or \"..\" path segments", raw)
	}
	return nil
}

// hasDotSegment reports whether a decoded path has a "." or ".." segment (RFC 3986 §3.3).
func hasDotSegment(path string) bool {
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// DefaultSettings is what a missing config file means.
func DefaultSettings() Settings {
	return Settings{Servers: []Server{}, Prefs: Prefs{Store: "keychain", Notifications: true}}
}

// Validate reports the first problem with s.
func (s Settings) Validate() error {
	seen := map[string]bool{}
	for _, srv := range s.Servers {
		if err := srv.Validate(); err != nil {
			return err
		}
		if seen[srv.Name] {
			return fmt.Errorf("server %q listed twice", srv.Name)
		}
		seen[srv.Name] = true
	}
	fleetStore := strings.HasPrefix(s.Prefs.Store, "etcd://") || strings.HasPrefix(s.Prefs.Store, "etcds://")
	if s.Prefs.Store != "keychain" && s.Prefs.Store != "file" && !fleetStore {
		return fmt.Errorf("store %q: must be \"keychain\", \"file\" or a fleet's etcd:// URL", s.Prefs.Store)
	}
	if s.Prefs.ProxyPort < 0 || s.Prefs.ProxyPort > 65535 {
		return fmt.Errorf("proxy port %d out of range", s.Prefs.ProxyPort)
	}
	if s.Prefs.ClientMetadataURL != "" {
		if err := ValidClientMetadataURL(s.Prefs.ClientMetadataURL); err != nil {
			return err
		}
	}
	if s.Prefs.EventHook != nil {
		if err := s.Prefs.EventHook.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// ErrCorruptConfig means the config file could not be used; it has been moved aside, and the error
// names where. The caller decides whether to continue with defaults.
var ErrCorruptConfig = errors.New("config file corrupt")

// ConfigFile is the settings file, dir/config.json. Its methods do not lock: CLI processes hold
// LockFile(LockPath()) around a load-modify-save. Safe for concurrent use.
type ConfigFile struct {
	dir string
	now func() time.Time
}

// DefaultConfigDir is os.UserConfigDir()/authkeeper.
func DefaultConfigDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("config dir: %w", err)
	}
	return filepath.Join(d, "authkeeper"), nil
}

// NewConfigFile returns the config file in dir (see DefaultConfigDir); now (time.Now if nil) names
// corrupt files moved aside.
func NewConfigFile(dir string, now func() time.Time) (*ConfigFile, error) {
	if dir == "" {
		return nil, errors.New("config: no directory")
	}
	if now == nil {
		now = time.Now
	}
	return &ConfigFile{dir: dir, now: now}, nil
}

// Path is the config file's path.
func (c *ConfigFile) Path() string { return filepath.Join(c.dir, "config.json") }

// LockPath is the lock file that guards the config and the keychain records against two CLI processes.
func (c *ConfigFile) LockPath() string { return filepath.Join(c.dir, "lock") }

// Load reads the settings; a missing file gives DefaultSettings. A file that does not decode or
// validate is renamed to config.json.corrupt-<time> — never overwritten — and Load returns
// DefaultSettings with an error wrapping ErrCorruptConfig that names both files.
func (c *ConfigFile) Load() (Settings, error) {
	s := DefaultSettings()
	data, err := os.ReadFile(c.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("config: %w", err)
	}
	// Unknown fields are allowed: a config written by a newer authkeeper is not corrupt.
	bad := json.Unmarshal(data, &s)
	if bad == nil {
		bad = s.Validate()
	}
	if bad == nil {
		return s, nil
	}
	aside := fmt.Sprintf("%s.corrupt-%s", c.Path(), c.now().UTC().Format("20060102T150405.000000000Z"))
	if err := os.Rename(c.Path(), aside); err != nil {
		return DefaultSettings(), fmt.Errorf("%w: %s: %v; moving it aside failed too: %w", ErrCorruptConfig, c.Path(), bad, err)
	}
	return DefaultSettings(), fmt.Errorf("%w: %s: %v; it was moved to %s and defaults are in use until you fix it or save new settings",
		ErrCorruptConfig, c.Path(), bad, aside)
}

// Save validates s and writes it atomically (temp file, fsync, rename, fsync of the directory).
func (c *ConfigFile) Save(s Settings) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := WriteFileAtomic(c.Path(), append(js, '\n'), 0o600); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
