package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/authkeeper/authkeeper/oauth"
)

// What counts as a rejected token, and what the proxy does about it (docs/proxy.md, "The 401 /
// refresh / replay rule"). The HTTP layer's refusal is strong evidence; a JSON-RPC error in a 200 body
// is weak evidence, because a server whose own downstream credential is bad ("GitHub API: 401
// Unauthorized") says the same thing with any token the proxy could send.

// evidence is how surely an answer says the server refused the token.
type evidence uint8

const (
	noEvidence evidence = iota
	// weakEvidence: for a POST, a 200 application/json body whose JSON-RPC error says authentication
	// failed — a gateway rejecting the token, or the server's own downstream failing. It earns at most
	// one refresh per token and never marks the server revoked.
	weakEvidence
	// strongEvidence: 401, or 403 with error="invalid_token" (RFC 6750 §3.1).
	strongEvidence
)

// step is what the proxy does about the first answer to a request.
type step uint8

const (
	// passOn: the answer goes back unchanged; the keeper is not told.
	passOn step = iota
	// refreshReplay: one single-flight forced refresh, then the request is sent once more.
	refreshReplay
	// refreshPassOn: one forced refresh, and the server's answer goes back unchanged, because the
	// request must not be sent twice (a tool may have run); the agent's next call carries the new token.
	refreshPassOn
)

// firstStep decides what to do about the first answer. For weak evidence only, reissued says the
// token was itself handed out after a weak-evidence forced refresh (the server says the same with any
// token: refreshing again would burn a rotation on every call), and repeatable that the request is
// safe to send twice (see repeatable).
func firstStep(ev evidence, reissued, repeatable bool) step {
	switch {
	case ev == strongEvidence:
		return refreshReplay
	case ev == noEvidence || reissued:
		return passOn
	case repeatable:
		return refreshReplay
	default:
		return refreshPassOn
	}
}

// revokesAfterReplay reports whether the answer to a replay, sent with the token just refreshed,
// marks the server revoked until the user signs in again: only strong evidence does. Weak evidence
// goes back to the caller as the server's answer.
func revokesAfterReplay(ev evidence) bool { return ev == strongEvidence }

// unsafeToRepeat are the JSON-RPC methods a message must not carry to be sent twice: a tool call may
// have side effects, and a 200 answer says the server had the request in hand.
var unsafeToRepeat = []string{"tools/call"}

// repeatable reports whether a request body may be sent to the server a second time: it is a
// JSON-RPC message or batch and none of its messages is a tools/call. A body that does not parse is
// not repeatable: what it would do twice is unknown. Parsed only after weak evidence.
func repeatable(body []byte) bool {
	heads, _, ok := rpcHeads(body)
	if !ok {
		return false
	}
	for _, h := range heads {
		for _, m := range unsafeToRepeat {
			if h.Method == m {
				return false
			}
		}
	}
	return true
}

// tokenSum is what the proxy keeps of a token: its SHA-256, never the token itself.
type tokenSum [sha256.Size]byte

// weakMemory is one server's memory of weak evidence. Its lock is held while a weak rejection is acted
// on, so a request whose weak answer arrives while another's weak refresh is in flight sees that
// refresh's token once it gets the lock, instead of forcing a second refresh of the token just issued.
type weakMemory struct {
	lock chan struct{} // a mutex whose wait a caller that went away can leave
	// reissued is the token the keeper handed out after the last refresh forced by weak evidence;
	// guarded by lock.
	reissued *tokenSum
}

// weakRefresh acts on weak evidence against tok, a token of server name, for the request body: it
// decides with firstStep and, unless that says passOn, forces the refresh (refresh reports the
// server's rejection of tok to its keeper and returns the token to use now) and remembers the token it
// returns. The memory holds one token per server, replaced by the next weak refresh, so it re-arms by
// itself once the token changes for any other reason (a scheduled refresh, a strong rejection, a
// sign-in). Concurrent weak rejections of one server are handled one at a time. Safe for concurrent
// use.
func (p *proxy) weakRefresh(ctx context.Context, name, tok string, body []byte,
	refresh func() (string, error)) (next step, fresh string, err error) {
	v, _ := p.weakRefreshed.LoadOrStore(name, &weakMemory{lock: make(chan struct{}, 1)})
	m := v.(*weakMemory)
	select {
	case m.lock <- struct{}{}:
	case <-ctx.Done():
		return passOn, "", ctx.Err()
	}
	defer func() { <-m.lock }()
	sum := tokenSum(sha256.Sum256([]byte(tok)))
	if next = firstStep(weakEvidence, m.reissued != nil && *m.reissued == sum, repeatable(body)); next == passOn {
		return next, "", nil
	}
	if fresh, err = refresh(); err == nil {
		// Whoever obtained it — this refresh, or one already under way — it is the token that answers
		// this weak evidence.
		sum = sha256.Sum256([]byte(fresh))
		m.reissued = &sum
	}
	return next, fresh, err
}

// inspect weighs resp as evidence that the token was rejected: strong for a 401 or a 403 with
// error="invalid_token", weak for a POST's 200 application/json body (up to maxInspect) whose
// JSON-RPC error says authentication failed. A body read to decide is returned, to be sent as the
// start of the answer if the response is passed on; a streamed (SSE) response is never read here, so
// it is never replayed.
func (p *proxy) inspect(r *http.Request, resp *http.Response, buf *bodyBuf) (read []byte, ev evidence) {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return nil, strongEvidence
	case http.StatusForbidden:
		if ch, ok := oauth.BearerChallenge(resp.Header); ok && ch.Params["error"] == "invalid_token" {
			return nil, strongEvidence
		}
	case http.StatusOK:
		if r.Method != http.MethodPost || resp.ContentLength > maxInspect || !isJSON(resp.Header.Get("Content-Type")) {
			return nil, noEvidence
		}
		start := buf.Len()
		_, err := buf.ReadFrom(io.LimitReader(resp.Body, maxInspect+1))
		read = buf.Bytes()[start:]
		if err != nil || len(read) > maxInspect {
			return read, noEvidence // streams on from where it stopped
		}
		if rpcAuthError(read) {
			return read, weakEvidence
		}
		return read, noEvidence
	}
	return nil, noEvidence
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
