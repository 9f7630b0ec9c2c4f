package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// BrowserOptions sets what the scripted browser does in the flows it runs. The zero value signs in
// as "alice", approves, and delivers the callback once.
type BrowserOptions struct {
	// User is the login name typed on the authorization server's login page. Default "alice".
	User string
	// Deny cancels at the consent page, so the callback carries error=access_denied; in ApproveDevice
	// it aborts at the device confirmation page instead. Default false.
	Deny bool
	// Tamper, if set, edits the callback URL before it is delivered (and recorded), e.g. to change
	// `state` or drop `iss`.
	Tamper func(*url.URL)
	// DeliverTwice requests the callback URL a second time after the first answer (a reload).
	DeliverTwice bool
	// NoDeliver stops before requesting the callback URL, which is still recorded (a closed tab).
	NoDeliver bool
}

// Visit is the outcome of one Open.
type Visit struct {
	// URL is the URL that was opened.
	URL string
	// Callback is the loopback callback URL the authorization server redirected to, after Tamper;
	// empty if the flow never got there.
	Callback string
	// Status and Body are the callback listener's answer (0 and "" when not delivered).
	Status int
	Body   string
	// SecondStatus and SecondBody answer the repeated delivery of DeliverTwice.
	SecondStatus int
	SecondBody   string
	// Err says why the flow failed, if it did.
	Err error
}

// Browser plays the user's web browser for the app's loopback login: Open returns at once, like
// pkg/browser, and a goroutine walks the authorization server's pages (login, consent) with a cookie
// jar, then requests the loopback callback. It follows redirects only within the origin of the
// opened URL, and delivers only to a loopback callback. Safe for concurrent use.
type Browser struct {
	t      testing.TB
	client *http.Client
	ctx    context.Context // canceled by t.Cleanup
	wg     sync.WaitGroup

	mu       sync.Mutex
	opts     BrowserOptions
	opened   []string
	visits   []*visit
	next     int           // index of the next visit Wait returns
	changed  chan struct{} // closed and replaced whenever a visit is opened or finishes
	callback string        // the last callback URL
	closed   bool          // set by t.Cleanup; Open then fails
}

type visit struct {
	Visit
	done bool
}

// NewBrowser returns a browser with an empty cookie jar. t.Cleanup stops its flows.
func NewBrowser(t testing.TB, opts BrowserOptions) *Browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("cookie jar: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Browser{
		t: t,
		client: &http.Client{
			Jar:           jar,
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		ctx:     ctx,
		opts:    opts,
		changed: make(chan struct{}),
	}
	t.Cleanup(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		cancel()
		b.wg.Wait()
	})
	return b
}

// SetOptions replaces the options for flows opened from now on.
func (b *Browser) SetOptions(opts BrowserOptions) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opts = opts
}

// Open starts an authorization-code flow at rawURL in the background, as a browser tab would.
// It fails only if rawURL is not an absolute http(s) URL.
func (b *Browser) Open(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("browser: cannot open %q", rawURL)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("browser: closed at the end of the test")
	}
	v := &visit{Visit: Visit{URL: rawURL}}
	n, opts := len(b.visits)+1, b.opts
	b.opened = append(b.opened, rawURL)
	b.visits = append(b.visits, v)
	b.notifyLocked()
	b.wg.Go(func() {
		err := b.authorize(b.ctx, u, opts, v)
		b.mu.Lock()
		v.Err = err
		v.done = true
		b.notifyLocked()
		status := v.Status
		b.mu.Unlock()
		if err != nil {
			b.t.Logf("browser: flow %d failed: %v", n, err)
		} else {
			b.t.Logf("browser: flow %d done, callback answered %d", n, status)
		}
	})
	return nil
}

func (b *Browser) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// Wait returns the outcome of the oldest flow not yet returned by Wait, waiting for it to be opened
// and to finish. The error is the flow's (Visit.Err) or ctx's.
func (b *Browser) Wait(ctx context.Context) (Visit, error) {
	for {
		b.mu.Lock()
		if b.next < len(b.visits) && b.visits[b.next].done {
			v := b.visits[b.next].Visit
			b.next++
			b.mu.Unlock()
			return v, v.Err
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Visit{}, fmt.Errorf("browser: waiting for a flow: %w", ctx.Err())
		}
	}
}

// Opened returns every URL passed to Open, in order.
func (b *Browser) Opened() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.opened...)
}

// LastCallback returns the last callback URL reached (after Tamper), or "".
func (b *Browser) LastCallback() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.callback
}

// authorize walks the authorization server's pages from start until it redirects to another origin,
// which must be a loopback callback, and delivers that callback as opts say.
func (b *Browser) authorize(ctx context.Context, start *url.URL, opts BrowserOptions, v *visit) error {
	cb, err := b.walk(ctx, start, opts, "")
	if err != nil {
		return err
	}
	if cb == nil {
		return errors.New("browser: the authorization server never redirected to the callback")
	}
	if !isLoopback(cb) {
		return fmt.Errorf("browser: refusing to follow a redirect to %s, which is not a loopback callback", cb.Host)
	}
	if opts.Tamper != nil {
		opts.Tamper(cb)
	}
	b.mu.Lock()
	v.Callback = cb.String()
	b.callback = v.Callback
	b.mu.Unlock()
	if opts.NoDeliver {
		return nil
	}
	status, body, err := b.get(ctx, cb)
	b.mu.Lock()
	v.Status, v.Body = status, body
	b.mu.Unlock()
	if err != nil || !opts.DeliverTwice {
		return err
	}
	status, body, err = b.get(ctx, cb)
	b.mu.Lock()
	v.SecondStatus, v.SecondBody = status, body
	b.mu.Unlock()
	return err
}

// get requests the callback without following its redirects, and returns its answer.
func (b *Browser) get(ctx context.Context, u *url.URL) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, "", fmt.Errorf("browser: callback: %w", err)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("browser: callback: %w", errors.Unwrap(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, "", fmt.Errorf("browser: callback body: %w", err)
	}
	return resp.StatusCode, string(body), nil
}

// isLoopback reports whether u is an http URL on a loopback address (RFC 8252 §7.3).
func isLoopback(u *url.URL) bool {
	if u.Scheme != "http" {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// ApproveDevice completes the device-flow verification pages (RFC 8628 §3.3) in this browser: it
// opens uri — verification_uri_complete when userCode is "", else verification_uri, where it types
// userCode — confirms (or, with Deny, aborts), signs in and consents. It returns when the server
// shows its success page (or, with Deny, its "interrupted" page).
func (b *Browser) ApproveDevice(ctx context.Context, uri, userCode string) error {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("browser: cannot open %q", uri)
	}
	b.mu.Lock()
	opts := b.opts
	b.mu.Unlock()
	away, err := b.walk(ctx, u, opts, userCode)
	if err != nil {
		return err
	}
	if away != nil {
		return fmt.Errorf("browser: device verification redirected away to %s", away.Host)
	}
	return nil
}

// walk drives the authorization server's pages from start. It returns the first redirect that leaves
// start's origin, or nil when it reaches a final page (device flow success or abort).
func (b *Browser) walk(ctx context.Context, start *url.URL, opts BrowserOptions, userCode string) (*url.URL, error) {
	if opts.User == "" {
		opts.User = "alice"
	}
	origin := start.Scheme + "://" + start.Host
	method, target, form := http.MethodGet, start, url.Values(nil)
	for range 30 {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, target.String(), body)
		if err != nil {
			return nil, fmt.Errorf("browser: %w", err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := b.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("browser: %s %s: %w", method, target.Path, errors.Unwrap(err))
		}
		page, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("browser: %s %s: %w", method, target.Path, err)
		}
		if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
			next, err := target.Parse(loc)
			if err != nil {
				return nil, fmt.Errorf("browser: bad redirect from %s: %w", target.Path, err)
			}
			if next.Scheme+"://"+next.Host != origin {
				return next, nil
			}
			method, target, form = http.MethodGet, next, nil
			continue
		}
		p, err := parsePage(page)
		if err != nil {
			return nil, fmt.Errorf("browser: %s: %w", target.Path, err)
		}
		act, err := p.next(opts, userCode)
		if err != nil {
			return nil, fmt.Errorf("browser: %s %s answered %d: %w", method, target.Path, resp.StatusCode, err)
		}
		if act == nil {
			return nil, nil
		}
		next, err := target.Parse(act.url)
		if err != nil || next.Scheme+"://"+next.Host != origin {
			return nil, fmt.Errorf("browser: page %s points off the authorization server: %q", target.Path, act.url)
		}
		method, target, form = act.method, next, act.form
	}
	return nil, errors.New("browser: too many pages without reaching the callback")
}

// page is what the browser reads of an HTML page: its title, text, forms and links.
type page struct {
	title, text string
	forms       []pageForm
	links       map[string]string // link text -> href
}

type pageForm struct {
	id, action, method string
	fields             url.Values
	visible            bool // has a field the user types into
}

// action is the next request of a walk.
type action struct {
	method, url string
	form        url.Values
}

func parsePage(b []byte) (*page, error) {
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	p := &page{links: map[string]string{}}
	var text strings.Builder
	var cur *pageForm
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		attr := func(k string) string {
			for _, a := range n.Attr {
				if a.Key == k {
					return a.Val
				}
			}
			return ""
		}
		switch {
		case n.Type == html.TextNode:
			text.WriteString(n.Data + " ")
		case n.Type == html.ElementNode && (n.Data == "script" || n.Data == "style"):
			return
		case n.Type == html.ElementNode && n.Data == "title" && n.FirstChild != nil:
			p.title = strings.TrimSpace(n.FirstChild.Data)
		case n.Type == html.ElementNode && n.Data == "a":
			p.links[strings.TrimSpace(nodeText(n))] = attr("href")
		case n.Type == html.ElementNode && n.Data == "form":
			p.forms = append(p.forms, pageForm{id: attr("id"), action: attr("action"), method: strings.ToUpper(attr("method")), fields: url.Values{}})
			cur = &p.forms[len(p.forms)-1]
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
			cur = nil
			return
		case n.Type == html.ElementNode && n.Data == "input" && cur != nil && attr("name") != "":
			cur.fields.Set(attr("name"), attr("value"))
			cur.visible = cur.visible || attr("type") != "hidden"
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	p.text = strings.Join(strings.Fields(text.String()), " ")
	return p, nil
}

func nodeText(n *html.Node) string {
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return b.String()
}

// next decides what the user does on p: sign in, consent or cancel, type and confirm a device code,
// or press a self-submitting form's button. nil means p is a final page.
func (p *page) next(opts BrowserOptions, userCode string) (*action, error) {
	switch {
	case p.title == "Sign-in Success":
		return nil, nil
	case strings.Contains(p.text, "request was interrupted"):
		if opts.Deny {
			return nil, nil
		}
		return nil, fmt.Errorf("the sign-in was interrupted: %s", p.text)
	case strings.Contains(p.text, "code you entered is incorrect"), strings.Contains(p.text, "error processing your request"):
		return nil, fmt.Errorf("the device code was refused: %s", p.text)
	}
	for _, f := range p.forms {
		post := &action{method: http.MethodPost, url: f.action, form: f.fields}
		switch {
		case f.fields.Get("prompt") == "login":
			f.fields.Set("login", opts.User)
			f.fields.Set("password", "bench") // devInteractions accepts any password
			return post, nil
		case f.fields.Get("prompt") == "consent" && opts.Deny:
			if href, ok := p.links["[ Cancel ]"]; ok {
				return &action{method: http.MethodGet, url: href}, nil
			}
			return nil, errors.New("the consent page has no Cancel link")
		case f.fields.Get("prompt") == "consent":
			return post, nil
		case f.id == "op.deviceInputForm":
			if userCode != "" {
				f.fields.Set("user_code", userCode)
			}
			return post, nil
		case f.id == "op.deviceConfirmForm":
			if opts.Deny {
				f.fields.Set("abort", "yes")
			}
			return post, nil
		case len(p.forms) == 1 && !f.visible && f.method == http.MethodPost:
			return post, nil // a form_post page a browser submits by script
		}
	}
	text := p.text
	if len(text) > 500 {
		text = text[:500] + "…"
	}
	return nil, fmt.Errorf("unexpected page %q: %s", p.title, text)
}
