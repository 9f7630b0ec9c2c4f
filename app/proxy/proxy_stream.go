package proxy

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// hopHeaders are connection-level (RFC 9110 §7.6.1) and never forwarded in either direction.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// dropHopHeaders deletes from h the hop-by-hop headers and every header the Connection values name.
func dropHopHeaders(h http.Header, connection []string) {
	for _, c := range connection {
		for f := range strings.SplitSeq(c, ",") {
			if f = strings.TrimSpace(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// dropInbound are the caller's headers that stay at the proxy: its credentials (the access key, any
// Authorization of its own, cookies), what is about the local page (Origin, Referer), what the
// transport sets itself, and forwarding metadata that would reveal or spoof the local side.
var dropInbound = []string{"Authorization", ProxyKeyHeader, ReceiptHeader, "Cookie", "Origin", "Referer", "Proxy-Authorization",
	"Accept-Encoding", "Content-Length", "Expect", "Host", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// outboundHeader turns the caller's header into the upstream request's, in place: everything else —
// Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Accept, Content-Type, the MCP method headers —
// passes through unchanged.
func outboundHeader(h http.Header) http.Header {
	dropHopHeaders(h, h["Connection"])
	for _, k := range dropInbound {
		delete(h, k)
	}
	return h
}

// copyResponse sends resp to the caller: headers (minus hop-by-hop ones and cookies: the proxy's
// origin is shared by every server), status, then the body, starting with the part already read. An
// event stream is flushed after every read, so each event reaches the client as the server sends it.
func (p *proxy) copyResponse(w http.ResponseWriter, resp *http.Response, read []byte) {
	defer resp.Body.Close()
	h := w.Header()
	for k, vv := range resp.Header {
		h[k] = vv
	}
	dropHopHeaders(h, resp.Header["Connection"])
	delete(h, "Set-Cookie")
	if resp.ContentLength >= 0 {
		h["Content-Length"] = []string{strconv.FormatInt(resp.ContentLength, 10)}
	}
	w.WriteHeader(resp.StatusCode)
	if len(read) > 0 {
		if _, err := w.Write(read); err != nil {
			return
		}
	}
	bp := p.copyBufs.Get().(*[]byte)
	defer p.copyBufs.Put(bp)
	if !isSSE(resp.Header.Get("Content-Type")) {
		_, _ = io.CopyBuffer(writerOnly{w}, resp.Body, *bp)
		return
	}
	p.copyStream(w, resp.Body, *bp)
}

// sseHeaderDelay is how long an event stream's headers wait for its first event, to leave together:
// an answer that comes at once costs the client one wake-up instead of two.
const sseHeaderDelay = 10 * time.Millisecond

// copyStream relays an event stream, flushing after every read so each event reaches the client as the
// server sends it. The headers go with the first event, or alone after sseHeaderDelay, so a client
// waiting on an idle stream still sees it open.
func (p *proxy) copyStream(w http.ResponseWriter, body io.Reader, buf []byte) {
	fl, _ := w.(http.Flusher)
	var mu sync.Mutex // the ResponseWriter is used by this goroutine and the timer's
	sent, done := false, false
	if fl != nil {
		t := time.AfterFunc(sseHeaderDelay, func() {
			mu.Lock()
			defer mu.Unlock()
			if !sent && !done {
				sent = true
				fl.Flush()
			}
		})
		defer t.Stop()
	}
	defer func() {
		mu.Lock()
		done = true // the handler returns: the timer must not touch w any more
		mu.Unlock()
	}()
	for {
		n, err := body.Read(buf)
		if n > 0 {
			mu.Lock()
			sent = true
			_, werr := w.Write(buf[:n])
			if werr == nil && fl != nil {
				fl.Flush()
			}
			mu.Unlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// writerOnly hides the ResponseWriter's ReadFrom, so io.CopyBuffer uses the pooled buffer.
type writerOnly struct{ io.Writer }

func isSSE(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "text/event-stream")
}
