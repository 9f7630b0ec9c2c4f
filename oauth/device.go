package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// ErrNoDeviceFlow: the AS advertises no device_authorization_endpoint.
var ErrNoDeviceFlow = errors.New("oauth: authorization server does not support the device flow")

// DeviceAuthorization is an RFC 8628 §3.2 answer: what to show the user, and what PollDevice needs.
// String redacts the device code. Not safe for concurrent PollDevice calls.
type DeviceAuthorization struct {
	// UserCode and VerificationURI are shown to the user; VerificationURIComplete, when the AS sends it,
	// embeds the code (e.g. for a QR code).
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string
	// ExpiresAt is when the codes stop working; PollDevice gives up then.
	ExpiresAt time.Time
	// Interval is the current polling interval: 5 s when the AS sent none, +5 s per slow_down.
	Interval time.Duration

	deviceCode string
	grant      Grant
}

func (d DeviceAuthorization) String() string {
	return fmt.Sprintf("DeviceAuthorization{user_code=%s uri=%s expires=%s}", d.UserCode, d.VerificationURI, d.ExpiresAt.Format(time.RFC3339))
}

// GoString makes %#v as safe as %v.
func (d DeviceAuthorization) GoString() string { return d.String() }

// StartDevice requests a device code for the probed server (RFC 8628 §3.1) with the same registration
// rules as SignIn. A reused dynamic registration the AS rejects as invalid_client is replaced once.
func (c *Client) StartDevice(ctx context.Context, p *Probe, opts SignInOptions) (*DeviceAuthorization, error) {
	if p != nil && p.AuthServer != nil && p.AuthServer.DeviceAuthorizationEndpoint == "" {
		return nil, ErrNoDeviceFlow
	}
	g, err := c.clientFor(ctx, p, opts)
	if err != nil {
		return nil, err
	}
	d, err := c.deviceAuthorization(ctx, g)
	if err != nil && !g.OmitResource && rejectsResource(err) {
		// Entra v2 refuses `resource` here too (AADSTS9010010): ask once more without it.
		g.OmitResource, g.Quirks = true, withQuirk(g.Quirks, QuirkResourceOmitted)
		d, err = c.deviceAuthorization(ctx, g)
	}
	if err != nil && g.Registration == RegistrationDynamic && clientEvicted(err) {
		if g, err = c.reregister(ctx, g); err != nil {
			return nil, err
		}
		d, err = c.deviceAuthorization(ctx, g)
	}
	return d, err
}

func (c *Client) deviceAuthorization(ctx context.Context, g Grant) (*DeviceAuthorization, error) {
	form := url.Values{}
	if len(g.Scopes) > 0 {
		form.Set("scope", strings.Join(requestScopes(g.Scopes), " "))
	}
	if !g.OmitResource && g.Resource != "" {
		form.Set("resource", g.Resource)
	}
	addExtraParams(form, g.ExtraParams)
	var r struct {
		DeviceCode              string          `json:"device_code"`
		UserCode                string          `json:"user_code"`
		VerificationURI         string          `json:"verification_uri"`
		VerificationURL         string          `json:"verification_url"` // Google's pre-standard spelling
		VerificationURIComplete string          `json:"verification_uri_complete"`
		ExpiresIn               json.RawMessage `json:"expires_in"` // numbers, or strings from some providers
		Interval                json.RawMessage `json:"interval"`
	}
	if err := c.postForm(ctx, "device authorization", g.DeviceAuthorizationEndpoint, form, c.authOf(g), &r); err != nil {
		return nil, err
	}
	if r.VerificationURI == "" {
		r.VerificationURI = r.VerificationURL
	}
	expiresIn, ok := parseExpiresIn(r.ExpiresIn)
	interval, _ := parseExpiresIn(r.Interval)
	if r.DeviceCode == "" || r.UserCode == "" || r.VerificationURI == "" || !ok {
		return nil, &Error{Op: "device authorization", Class: ClassMisconfigured, Err: errors.New("incomplete device authorization response")}
	}
	return &DeviceAuthorization{
		UserCode: r.UserCode, VerificationURI: r.VerificationURI, VerificationURIComplete: r.VerificationURIComplete,
		ExpiresAt: c.clock.Now().Add(time.Duration(expiresIn) * time.Second),
		Interval:  pollInterval(interval), deviceCode: r.DeviceCode, grant: g,
	}, nil
}

// pollInterval applies RFC 8628 §3.2: 5 s when the AS sends no (or a nonsensical) interval.
func pollInterval(seconds int64) time.Duration {
	if seconds <= 0 || seconds > 3600 {
		return 5 * time.Second
	}
	return time.Duration(seconds) * time.Second
}

// PollDevice waits for the user to approve (RFC 8628 §3.4–3.5): it polls every Interval, adds 5 s on
// slow_down, keeps polling through transient failures (a network error, 5xx, 429: the user may still
// approve; §3.5 lets the client back off), and stops at ExpiresAt — never polling at or after it — with
// an *Error of class ClassReauth (code expired_token).
func (c *Client) PollDevice(ctx context.Context, d *DeviceAuthorization) (Token, Grant, error) {
	g := d.grant
	form := url.Values{"grant_type": {deviceGrantType}, "device_code": {d.deviceCode}}
	wait := d.Interval
	for {
		left := d.ExpiresAt.Sub(c.clock.Now())
		if left <= 0 {
			return Token{}, g, &Error{Op: "device sign-in", Code: "expired_token", Class: ClassReauth, Err: errors.New("the user did not approve before the code expired")}
		}
		select {
		case <-ctx.Done():
			return Token{}, g, ctx.Err()
		case <-c.after(min(wait, left)):
		}
		wait = d.Interval
		if !c.clock.Now().Before(d.ExpiresAt) {
			continue // expired while waiting: report it without polling
		}
		res, err := c.tokenRequest(ctx, "device sign-in", g, form, g.Scopes, false)
		g = res.teach(g) // GitHub answers authorization_pending with HTTP 200
		if err == nil {
			if g, err = learn(g.Issuer, g, "", res); err != nil {
				return Token{}, g, err
			}
			return res.tok, g, nil
		}
		var oe *Error
		switch {
		case errors.As(err, &oe) && oe.Code == "authorization_pending":
		case errors.As(err, &oe) && oe.Code == "slow_down":
			d.Interval += 5 * time.Second
			wait = d.Interval
		case errors.As(err, &oe) && oe.Class == ClassTransient:
			wait = max(d.Interval, oe.RetryAfter)
		default:
			return Token{}, g, err
		}
	}
}
