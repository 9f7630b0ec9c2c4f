package oauth

import (
	"context"
	"net/http"
)

// ProbeChallenge is Probe for a server whose refusal is already known: wwwAuthenticate are the
// WWW-Authenticate values of a 401 it answered a real request with (the engine keeps those its proxy
// met). Probe sees a server only through the requests it sends, so one that lets them all through and
// refuses others — a tool checked before the token, a method the probe does not send — reads as
// NoAuth there; its own challenge still names its authorization server. Discovery is Probe's, with
// every check of every document (the resource metadata must cover serverURL).
func (c *Client) ProbeChallenge(ctx context.Context, serverURL string, wwwAuthenticate []string) (*Probe, error) {
	if err := checkURL(serverURL); err != nil {
		return nil, discoverErr(ClassMisconfigured, 0, err)
	}
	p := &Probe{ServerURL: serverURL, Reason: "the server asked for a token on a request it was sent earlier; "}
	header := http.Header{"Www-Authenticate": wwwAuthenticate}
	if err := c.discover(ctx, p, http.StatusUnauthorized, header); err != nil {
		return nil, err
	}
	return p, nil
}
