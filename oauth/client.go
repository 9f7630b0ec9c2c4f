// Package oauth is authkeeper's MCP authorization client: it probes a server for what it needs
// (RFC 9728, RFC 8414, the 2025-03-26 fallbacks), registers a client (static id, Client ID Metadata
// Document, RFC 7591), signs in through a loopback redirect (RFC 8252, PKCE, RFC 9207 `iss`, RFC 8707
// `resource`) or the device flow (RFC 8628), obtains machine tokens (client credentials, cross-app
// access), refreshes and revokes (RFC 7009), and classifies failures into one *Error.
//
// It is strict where security needs it (PKCE always sent, state and iss checked, metadata only from the
// origin asked, no secret ever follows a redirect) and lenient where real providers deviate harmlessly
// (Entra ID, Atlassian, Slack, GitHub, Auth0): each tolerated deviation is a Quirk recorded in the grant,
// for status to show.
//
// It speaks the protocol only: storage, scheduling and single-flight refresh belong to the engine. Token
// requests are made by hand because golang.org/x/oauth2 does not send `resource` on refresh.
package oauth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Opener opens a URL in the user's browser and returns without waiting for the user.
type Opener interface {
	Open(url string) error
}

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

// Config configures a Client. The zero value of every field but Opener is usable.
type Config struct {
	// HTTPClient makes every request to MCP and authorization servers. Its Timeout bounds each request.
	// It is not modified: the Client uses a shallow copy whose CheckRedirect refuses redirects that could
	// carry a secret (see refuseRedirect), then defers to this client's own CheckRedirect.
	// Default: a client with a 30 s timeout.
	HTTPClient *http.Client
	// Opener opens the authorization URL for SignIn. Default: none; SignIn then fails with ErrNoOpener
	// and only the device flow is available.
	Opener Opener
	// Clock dates token expiry and device-code deadlines. Default: the system clock.
	Clock Clock
	// After waits: it returns a channel that receives once d has passed. Device polling and the sign-in
	// timeout wait on it, so tests can compress time. Default: time.After.
	After func(d time.Duration) <-chan time.Time
	// ClientName is the client_name sent in dynamic registration. Default: "authkeeper".
	ClientName string
	// ClientMetadataURL is the https URL of authkeeper's Client ID Metadata Document, used as client id
	// when the AS advertises client_id_metadata_document_supported. Default: none (skip that route).
	ClientMetadataURL string
	// SignInTimeout bounds an interactive sign-in from opening the browser to the callback.
	// Default: 5 minutes.
	SignInTimeout time.Duration
	// DefaultTokenLifetime is the assumed lifetime of an access token whose response carries no
	// expires_in and which is not a readable JWT. Default: 10 minutes (conservative: it only makes the
	// engine refresh early).
	DefaultTokenLifetime time.Duration
	// MaxScopes caps the scope union a step-up may request. Default: 32.
	MaxScopes int
	// PKCEAssumedIssuers are the hosts of authorization servers known to support PKCE S256 without
	// advertising it; their grants also send the scopes on every refresh (both are Entra ID traits).
	// Default: login.microsoftonline.com, login.microsoftonline.us, login.partner.microsoftonline.cn.
	PKCEAssumedIssuers []string
}

// DefaultPKCEAssumedIssuers is the default of Config.PKCEAssumedIssuers: Entra ID's clouds.
var DefaultPKCEAssumedIssuers = []string{"login.microsoftonline.com", "login.microsoftonline.us", "login.partner.microsoftonline.cn"}

// Errors for the caller to branch on.
var (
	// ErrNoOpener: SignIn needs Config.Opener.
	ErrNoOpener = errors.New("oauth: no browser opener configured")
	// ErrSignInInProgress: an interactive sign-in for this server is already waiting for the user.
	ErrSignInInProgress = errors.New("oauth: a sign-in for this server is already in progress")
)

// Client is safe for concurrent use. It holds no tokens; every call takes what it needs.
type Client struct {
	http     *http.Client
	opener   Opener
	clock    Clock
	after    func(time.Duration) <-chan time.Time
	name     string
	cimdURL  string
	timeout  time.Duration
	lifetime time.Duration
	maxScope int
	pkceOK   []string // hosts, lower-cased

	mu        sync.Mutex
	active    map[string]bool   // resources with an interactive sign-in under way
	lingering map[int]*loopback // finished sign-ins' listeners, by port (see Client.finish)
}

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	c := &Client{
		http: cfg.HTTPClient, opener: cfg.Opener, clock: cfg.Clock, after: cfg.After,
		name: cfg.ClientName, cimdURL: cfg.ClientMetadataURL, timeout: cfg.SignInTimeout,
		lifetime: cfg.DefaultTokenLifetime, maxScope: cfg.MaxScopes, active: map[string]bool{}, lingering: map[int]*loopback{},
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	hc := *c.http
	hc.CheckRedirect = refuseRedirect(c.http.CheckRedirect)
	c.http = &hc
	if c.clock == nil {
		c.clock = systemClock{}
	}
	if c.after == nil {
		c.after = time.After
	}
	if c.name == "" {
		c.name = "authkeeper"
	}
	if c.cimdURL != "" {
		if err := checkURL(c.cimdURL); err != nil {
			return nil, fmt.Errorf("oauth config: ClientMetadataURL: %w", err)
		}
	}
	switch {
	case cfg.SignInTimeout < 0, cfg.DefaultTokenLifetime < 0, cfg.MaxScopes < 0:
		return nil, errors.New("oauth config: durations and MaxScopes must not be negative")
	}
	if c.timeout == 0 {
		c.timeout = 5 * time.Minute
	}
	if c.lifetime == 0 {
		c.lifetime = 10 * time.Minute
	}
	if c.maxScope == 0 {
		c.maxScope = 32
	}
	hosts := cfg.PKCEAssumedIssuers
	if hosts == nil {
		hosts = DefaultPKCEAssumedIssuers
	}
	for _, h := range hosts {
		c.pkceOK = append(c.pkceOK, strings.ToLower(strings.TrimSpace(h)))
	}
	return c, nil
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// begin marks an interactive sign-in for resource as under way; end releases it.
func (c *Client) begin(resource string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active[resource] {
		return fmt.Errorf("sign in to %s: %w", RedactURL(resource), ErrSignInInProgress)
	}
	c.active[resource] = true
	return nil
}

func (c *Client) end(resource string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.active, resource)
}
