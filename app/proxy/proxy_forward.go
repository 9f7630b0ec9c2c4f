package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/authkeeper/authkeeper/oauth"
)

// maxInspect bounds the 200 application/json bodies read whole to look for a JSON-RPC authentication
// error before they are passed on; larger ones stream through unread.
const maxInspect = 64 << 10

// bodyBuf is a pooled buffer for request bodies and inspected responses.
type bodyBuf struct{ bytes.Buffer }

// forward serves one request for server name: a fresh token, the upstream round trip, one replay after
// a rejected token, and the answer streamed back.
func (p *proxy) forward(w http.ResponseWriter, r *http.Request, name string) {
	buf := p.bodies.Get().(*bodyBuf)
	defer func() {
		if buf.Cap() <= 1<<20 { // do not keep rare huge buffers alive
			buf.Reset()
			p.bodies.Put(buf)
		}
	}()
	if r.Body != nil && r.Body != http.NoBody {
		if _, err := buf.ReadFrom(io.LimitReader(r.Body, maxRequestBody+1)); err != nil {
			return // the client went away mid-body
		}
		if buf.Len() > maxRequestBody {
			answer(w, r, nil, proxyFailure{Server: name, Subtype: SubtypeBodyTooLarge, Status: http.StatusRequestEntityTooLarge,
				Message: "the request body exceeds " + strconv.Itoa(maxRequestBody>>20) + " MiB", Action: "send a smaller request"}.rpc())
			return
		}
	}
	// The transport may still be reading the request body after RoundTrip returns (a server that
	// answers 401 before reading it all), so the body must not share the pooled buffer, which is reused
	// for inspecting the response and returned to the pool when this request ends.
	body := bytes.Clone(buf.Bytes())
	buf.Reset()
	k, err := p.e.Upstream(name)
	if err != nil {
		answer(w, r, body, rpcError{Code: CodeProxyError, status: http.StatusNotFound,
			Message: "authkeeper: no server named " + name + " is configured",
			Data:    ErrorData{Type: "not_configured", Server: name, Action: "add it with `authkeeper add URL --name " + name + "`"}})
		return
	}
	target, err := p.target(k.URL())
	if err != nil {
		answer(w, r, body, proxyFailure{Server: name, Subtype: SubtypeBadURL, Status: http.StatusBadGateway,
			Message: "the server URL cannot be used", Action: "fix the server's URL in authkeeper"}.rpc())
		return
	}
	if res := k.Resource(); res != "" && !sameOrigin(res, target) {
		// The tokens were issued for another origin (the settings' URL was edited after sign-in): a
		// server's token never goes to a host it was not issued for.
		answer(w, r, body, proxyFailure{Server: name, Subtype: SubtypeResourceMismatch, Status: http.StatusBadGateway,
			Message: "the server's URL is not the one its tokens were issued for",
			Action:  "sign in to " + name + " again (`authkeeper login " + name + "`) or fix its URL"}.rpc())
		return
	}
	if !k.NoAuth() && oauth.CheckURL(target.String()) != nil {
		// A server with credentials whose URL is plain http to another host (a hand-edited config: add
		// refuses it): the token would cross the network in clear text, so nothing is sent.
		answer(w, r, body, proxyFailure{Server: name, Subtype: SubtypeInsecureURL, Status: http.StatusBadGateway,
			Message: "the server's URL is plain http to another host, and authkeeper sends credentials only over https " +
				"(plain http only to this machine)",
			Action: "change the server's URL to https, or remove it and add it again"}.rpc())
		return
	}
	if r.Method == http.MethodPost {
		// A tool call in flight keeps the server busy (scheduled refreshes wait); a GET stream does not,
		// or an open stream would hold refreshes back until their hard deadline, every time.
		defer k.Busy()()
	}
	receipt := r.Header.Get(ReceiptHeader) != ""
	hdr := outboundHeader(r.Header)
	ctx := r.Context()

	if k.Refused() {
		// The server refused this grant and the refresh failed: only a sign-in helps, so neither the
		// server nor the AS is asked again until then.
		p.authError(w, r, body, k, nil)
		return
	}
	tok, err := k.Token(ctx)
	if err != nil {
		p.authError(w, r, body, k, err)
		return
	}
	if receipt {
		// Written and flushed before the first byte goes upstream: see ReceiptHeader.
		w.WriteHeader(http.StatusProcessing)
	}
	resp, err := p.send(ctx, r.Method, target, hdr, body, tok)
	if err != nil {
		p.unreachable(w, r, body, name, target, err)
		return
	}
	inspected, ev := p.inspect(r, resp, buf)
	if ev != noEvidence && k.NoAuth() {
		// A server saved as needing no auth refused the request. With a Bearer challenge it wants an
		// OAuth sign-in after all: the server turns into one that needs it, and the agent gets the
		// non-retryable sign_in_required (retrying could never help). Without one there is nothing
		// authkeeper could send: the server's own answer goes back.
		if _, ok := oauth.BearerChallenge(resp.Header); ok && resp.StatusCode == http.StatusUnauthorized {
			discard(resp)
			k.AuthRequired(resp.Header.Values("WWW-Authenticate"))
			p.authError(w, r, body, k, nil)
			return
		}
		ev = noEvidence
	}
	var (
		next  step // passOn unless the token was rejected
		fresh string
		rerr  error
	)
	switch ev {
	case strongEvidence:
		// RFC 6750 §3.1: the token was rejected.
		next = firstStep(ev, false, false)
		fresh, rerr = refreshRejected(ctx, k, tok, ev)
	case weakEvidence:
		if !k.Renewable() {
			// A refresh could not renew this token (a static token, or one without a refresh token), so
			// weak evidence cannot be put to the test, and it is not enough to end the token: the
			// server's answer goes back unchanged.
			break
		}
		// Only weak evidence parses the body's methods and takes the server's weak-evidence lock; a
		// request that was not rejected does neither (nor allocates this closure).
		next, fresh, rerr = p.weakRefresh(ctx, name, tok, body, func() (string, error) { return refreshRejected(ctx, k, tok, ev) })
	}
	switch next {
	case refreshPassOn:
		// Weak evidence on a request that must not be sent twice: the tool may have run. The token was
		// refreshed, so the agent's next call carries the new one, and the server's own answer goes
		// back unchanged whatever the refresh's outcome (a failed one shows on the next call).
	case refreshReplay:
		discard(resp)
		if rerr != nil {
			p.authError(w, r, body, k, rerr)
			return
		}
		tok = fresh
		if resp, err = p.send(ctx, r.Method, target, hdr, body, tok); err != nil {
			p.unreachable(w, r, body, name, target, err)
			return
		}
		buf.Reset() // the first answer was discarded
		if inspected, ev = p.inspect(r, resp, buf); revokesAfterReplay(ev) {
			// The server refuses even the token just refreshed (a wrong audience, a revoked client):
			// refreshing on every call would only burn rotations, so the server is marked revoked until
			// the user signs in again. Weak evidence here goes back as the server's answer: a server
			// whose own downstream fails says the same with any token.
			discard(resp)
			k.RefusedAfterRefresh(tok)
			p.authError(w, r, body, k, nil)
			return
		}
	}
	if resp.StatusCode == http.StatusForbidden && k.StepUp(resp.StatusCode, resp.Header) {
		resp.Body.Close()
		p.authError(w, r, body, k, nil)
		return
	}
	if isRedirect(resp.StatusCode) {
		resp.Body.Close()
		answer(w, r, body, proxyFailure{Server: name, Subtype: SubtypeUpstreamRedirect, Status: http.StatusBadGateway,
			Message: "the server redirects to " + redirectTarget(target, resp.Header.Get("Location")) +
				"; authkeeper does not follow redirects with credentials",
			Action: "if the server moved, remove it and add it again with its new URL"}.rpc())
		return
	}
	p.copyResponse(w, resp, inspected)
}

// target returns the parsed URL of a server, parsing each distinct URL once.
func (p *proxy) target(raw string) (*url.URL, error) {
	if u, ok := p.targets.Load(raw); ok {
		return u.(*url.URL), nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("the server URL is not an http(s) URL")
	}
	p.targets.Store(raw, u)
	return u, nil
}

// send makes one upstream round trip carrying tok. The transport never follows redirects.
func (p *proxy) send(ctx context.Context, method string, target *url.URL, hdr http.Header, body []byte, tok string) (*http.Response, error) {
	if tok == "" {
		delete(hdr, "Authorization") // a server without auth gets no (empty) credentials
	} else {
		hdr["Authorization"] = []string{"Bearer " + tok}
	}
	out := &http.Request{Method: method, URL: target, Host: target.Host, Header: hdr, ContentLength: int64(len(body))}
	if len(body) > 0 {
		out.Body = io.NopCloser(bytes.NewReader(body))
		// Lets the transport resend on a keep-alive connection the server closed before reading.
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return p.transport.RoundTrip(out.WithContext(ctx))
}

// refreshRejected reports tok's rejection on evidence ev to k — one single-flight forced refresh, or
// the token another request already moved on to — and returns the token to use now. Weak evidence goes
// to RejectedWeakly, whose failed refresh ends in needs-sign-in, never in revoked.
func refreshRejected(ctx context.Context, k Upstream, tok string, ev evidence) (string, error) {
	reject := k.Rejected
	if ev == weakEvidence {
		reject = k.RejectedWeakly
	}
	if err := reject(ctx, tok); err != nil {
		return "", err
	}
	return k.Token(ctx)
}

// discard closes a response that is not passed on, draining a little of it so the connection is reused.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func isJSON(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// redirectTarget names where a redirect points, for the caller's error: scheme, host and path only.
// A query or fragment may carry a credential (?access_token=…) and userinfo a password, so they are
// never echoed; a Location that does not parse is not echoed at all, since which of its parts is
// which is then unknown.
func redirectTarget(target *url.URL, loc string) string {
	u, err := target.Parse(loc)
	if err != nil {
		return "an unparseable location"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// authError answers with the structured auth_failure; a caller that went away gets nothing.
func (p *proxy) authError(w http.ResponseWriter, r *http.Request, body []byte, k Upstream, err error) {
	if r.Context().Err() != nil {
		return
	}
	answer(w, r, body, authFailure(k, err))
}

// unreachable answers a failed round trip to the MCP server. The error names only the origin: a
// server URL's query may carry a credential.
func (p *proxy) unreachable(w http.ResponseWriter, r *http.Request, body []byte, name string, target *url.URL, err error) {
	if r.Context().Err() != nil {
		return
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	answer(w, r, body, proxyFailure{Server: name, Subtype: SubtypeUpstreamUnreachable, Status: http.StatusBadGateway, Retryable: true,
		Message: "cannot reach " + target.Scheme + "://" + target.Host + ": " + err.Error(),
		Action:  "check the network connection and that the server is up; the call can be retried"}.rpc())
}

// sameOrigin reports whether rawResource and target share scheme, host and port.
func sameOrigin(rawResource string, target *url.URL) bool {
	u, err := url.Parse(rawResource)
	return err == nil && strings.EqualFold(u.Scheme, target.Scheme) && strings.EqualFold(u.Host, target.Host)
}
