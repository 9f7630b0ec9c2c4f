package oauth

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Class tells the engine how to react to a failed OAuth exchange. It is decided from the OAuth `error`
// field and the HTTP status only, never from provider-specific codes (MCP-AUTH.md, "Error classes").
type Class int

const (
	// ClassMisconfigured: a setting is wrong (invalid_scope, invalid_target, invalid_request, an unknown
	// error, a malformed response). Show a message naming the setting; retrying will not help.
	ClassMisconfigured Class = iota
	// ClassReauth: the grant is dead (invalid_grant, interaction_required, login_required,
	// consent_required, access_denied, an expired device code). One prompt, one click.
	ClassReauth
	// ClassClientInvalid: the AS no longer knows the client (invalid_client, unauthorized_client, or a 401
	// from the token endpoint). Re-register silently, then re-authenticate if needed — but only on an
	// explicit code (see clientEvicted): a bare 401 is reported in this class and re-registers nothing.
	ClassClientInvalid
	// ClassTransient: the network failed, the AS answered 5xx or 429, or temporarily_unavailable. Keep the
	// current token while it is valid and back off, honouring RetryAfter.
	ClassTransient
)

func (c Class) String() string {
	switch c {
	case ClassReauth:
		return "re-auth needed"
	case ClassClientInvalid:
		return "client invalid"
	case ClassTransient:
		return "transient"
	default:
		return "misconfigured"
	}
}

// Sentinels matched by errors.Is against an *Error of the corresponding class.
var (
	ErrReauthRequired = errors.New("oauth: sign-in required")
	ErrClientInvalid  = errors.New("oauth: client registration invalid")
	ErrTransient      = errors.New("oauth: temporary failure")
	ErrMisconfigured  = errors.New("oauth: misconfigured")
)

// Error is the one error type for a failed exchange with an authorization server: token, refresh,
// registration, device authorization, revocation or an authorization response. It never carries a token.
type Error struct {
	// Op names the exchange, e.g. "refresh" or "register".
	Op string
	// Code is the OAuth `error` field, empty when the AS sent none.
	Code string
	// Description is the OAuth `error_description` field (Entra's AADSTS codes live here: display only).
	Description string
	// Status is the HTTP status, 0 when no response arrived.
	Status int
	// Class is how the engine should react.
	Class Class
	// RetryAfter is the parsed Retry-After header of a 429 or 503, 0 when absent.
	RetryAfter time.Duration
	// Err is the underlying cause (a network error, a decoding error), if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Code != "" {
		fmt.Fprintf(&b, ": %s", e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(&b, " (%s)", e.Description)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " [HTTP %d]", e.Status)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's class.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrReauthRequired:
		return e.Class == ClassReauth
	case ErrClientInvalid:
		return e.Class == ClassClientInvalid
	case ErrTransient:
		return e.Class == ClassTransient
	case ErrMisconfigured:
		return e.Class == ClassMisconfigured
	}
	return false
}

// Classify returns the class of an OAuth error code and HTTP status (status 0: no response).
func Classify(code string, status int) Class {
	switch code {
	case "invalid_grant", "interaction_required", "login_required", "consent_required",
		"access_denied", "expired_token", "account_selection_required":
		return ClassReauth
	case "invalid_client", "unauthorized_client":
		return ClassClientInvalid
	case "temporarily_unavailable", "server_error", "slow_down", "authorization_pending":
		return ClassTransient
	case "invalid_scope", "invalid_target", "invalid_request", "unsupported_grant_type",
		"unsupported_response_type", "invalid_client_metadata", "invalid_redirect_uri":
		return ClassMisconfigured
	}
	switch {
	case status == 0, status == http.StatusTooManyRequests, status >= 500:
		return ClassTransient
	case status == http.StatusUnauthorized:
		// RFC 6749 §5.2: a 401 from the token endpoint means client authentication failed. It stays in
		// this class so that it is reported as a client problem and not retried forever as transient;
		// but without invalid_client in the body it may come from a captive portal or a WAF, so
		// clientEvicted does not let it trigger re-registration.
		return ClassClientInvalid
	}
	return ClassMisconfigured
}

// clientEvicted reports an AS saying explicitly that it does not know the client: the only answer on
// which a working dynamic registration is thrown away and replaced. A bare 401 (no `error` field) does
// not qualify: a captive portal, proxy or WAF in front of the AS answers that way too, and replacing a
// good registration there would strand the grant bound to it.
func clientEvicted(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Code == "invalid_client" || e.Code == "unauthorized_client")
}

// retryAfter parses Retry-After as delay-seconds or an HTTP date (RFC 9110 §10.2.3).
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// networkError wraps a failure to reach the AS as a transient *Error.
func networkError(op string, err error) *Error {
	return &Error{Op: op, Class: ClassTransient, Err: err}
}
