package proxy

import (
	"bytes"
	"context"
	"encoding/json"
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
	inspected, again := p.inspect(r, resp, buf)
	if again && k.NoAuth() {
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
		again = false
	}
	if again {
		// RFC 6750 §3.1: the token was rejected. One single-flight forced refresh (or the token another
		// request already moved on to), then one replay; a second rejection goes back unchanged.
		rerr := k.Rejected(ctx, tok)
		discard(resp)
		if rerr != nil {
			p.authError(w, r, body, k, rerr)
			return
		}
		if tok, err = k.Token(ctx); err != nil {
			p.authError(w, r, body, k, err)
			return
		}
		if resp, err = p.send(ctx, r.Method, target, hdr, body, tok); err != nil {
			p.unreachable(w, r, body, name, target, err)
			return
		}
		buf.Reset() // the first answer was discarded
		if inspected, again = p.inspect(r, resp, buf); again {
			// The server refuses even the token just refreshed (a wrong audience, a revoked client):
			// refreshing on every call would only burn rotations, so the server is marked revoked until
			// the user signs in again.
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
		loc := resp.Header.Get("Location")
		if u, err := target.Parse(loc); err == nil {
			loc = u.Scheme + "://" + u.Host + u.Path // never echo a query: it may carry a credential
		}
		answer(w, r, body, proxyFailure{Server: name, Subtype: SubtypeUpstreamRedirect, Status: http.StatusBadGateway,
			Message: "the server redirects to " + loc + "; authkeeper does not follow redirects with credentials",
			Action:  "if the server moved, remove it and add it again with its new URL"}.rpc())
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

// inspect decides whether resp rejected the token: a 401, a 403 with error="invalid_token", or — for a
// POST — a 200 application/json body (up to maxInspect) whose JSON-RPC error says authentication
// failed. A body read to decide is returned, to be sent as the start of the answer if the response is
// passed on; a streamed (SSE) response is never read here, so it is never replayed.
func (p *proxy) inspect(r *http.Request, resp *http.Response, buf *bodyBuf) (read []byte, rejected bool) {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		rejected = true
	case http.StatusForbidden:
		ch, ok := oauth.BearerChallenge(resp.Header)
		rejected = ok && ch.Params["error"] == "invalid_token"
	case http.StatusOK:
		if r.Method != http.MethodPost || resp.ContentLength > maxInspect || !isJSON(resp.Header.Get("Content-Type")) {
			return nil, false
		}
		start := buf.Len()
		_, err := buf.ReadFrom(io.LimitReader(resp.Body, maxInspect+1))
		read = buf.Bytes()[start:]
		if err != nil || len(read) > maxInspect {
			return read, false // streams on from where it stopped
		}
		if !rpcAuthError(read) {
			return read, false
		}
		rejected = true
	}
	return read, rejected
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

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// authTerms are the phrases of JSON-RPC errors with which servers behind gateways report a rejected
// token in a 200 body; matched lower-cased against error.message.
var authTerms = []string{"unauthorized", "unauthorised", "unauthenticated", "authentication failed",
	"authentication required", "invalid_token", "invalid token", "token expired", "expired token", "token has expired"}

// rpcAuthError reports whether a JSON-RPC response body is an error saying authentication failed.
func rpcAuthError(body []byte) bool {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' || !bytes.Contains(body, []byte(`"error"`)) {
		return false
	}
	var m struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &m) != nil || m.Error == nil {
		return false
	}
	if m.Error.Code == http.StatusUnauthorized {
		return true
	}
	msg := strings.ToLower(m.Error.Message)
	for _, t := range authTerms {
		if strings.Contains(msg, t) {
			return true
		}
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
