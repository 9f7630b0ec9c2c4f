package oauth

import (
	"errors"
	"fmt"
	"net/http"
)

// Step-up outcomes.
var (
	// ErrNotStepUp: the response is not a 403 asking for more scope.
	ErrNotStepUp = errors.New("oauth: not a step-up challenge")
	// ErrStepUpExhausted: the challenge asks for nothing not already granted (the AS refused the upgrade
	// before: do not loop), or the union would exceed Config.MaxScopes.
	ErrStepUpExhausted = errors.New("oauth: step-up cannot widen the scopes further")
)

// StepUpScopes reads a resource's answer and, when it is a 403 with error="insufficient_scope" or a
// `scope=` challenge (the Go SDK sends the latter alone), returns the union of granted and challenged
// scopes to sign in again with, granted ones first, none repeated. The engine remembers refused
// upgrades and caps attempts; this caps the union's size.
func (c *Client) StepUpScopes(status int, h http.Header, granted []string) ([]string, error) {
	ch, ok := BearerChallenge(h)
	if status != http.StatusForbidden || !ok || (ch.Params["error"] != "insufficient_scope" && ch.Params["scope"] == "") {
		return nil, ErrNotStepUp
	}
	// Granted lists and challenges may repeat a scope (the Go SDK's challenge names every scope the
	// request needs, held ones included): the union holds each once.
	held := unionScopes(granted)
	union := unionScopes(held, ch.Scopes())
	if len(union) == len(held) {
		return nil, fmt.Errorf("%w: challenge scope %q already granted", ErrStepUpExhausted, ch.Params["scope"])
	}
	if len(union) > c.maxScope {
		return nil, fmt.Errorf("%w: %d scopes exceed the cap of %d", ErrStepUpExhausted, len(union), c.maxScope)
	}
	return union, nil
}
