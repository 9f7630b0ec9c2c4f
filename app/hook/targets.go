package hook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/authkeeper/authkeeper/oauth"
)

// command runs a program per document. Only its base name is logged: its arguments may hold anything.
type command struct {
	path string
	args []string
}

var _ target = (*command)(nil)

// newCommand checks argv and resolves argv[0] in PATH now, so that a typo fails at start rather than
// at the first event, when someone needed to hear about it.
func newCommand(argv []string) (*command, error) {
	if argv[0] == "" {
		return nil, errors.New("the command's first word (the program) is empty")
	}
	for _, a := range argv {
		if strings.ContainsRune(a, 0) {
			return nil, errors.New("the command has a NUL character in an argument")
		}
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("command: %w", err)
	}
	return &command{path: path, args: slices.Clone(argv[1:])}, nil
}

func (c *command) String() string { return "the command " + filepath.Base(c.path) }

// waitDelay bounds how long a killed command may keep its stdin pipe open (a child it started).
const waitDelay = time.Second

func (c *command) deliver(ctx context.Context, doc Document, body []byte) error {
	cmd := exec.CommandContext(ctx, c.path, c.args...)
	cmd.Stdin = bytes.NewReader(body) // stdout and stderr: the null device
	cmd.Env = append(os.Environ(), "AUTHKEEPER_EVENT="+string(doc.Event), "AUTHKEEPER_SERVER="+doc.Server)
	cmd.WaitDelay = waitDelay
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return errors.New("killed: it ran past the timeout")
	}
	return err
}

// webhook POSTs each document to a URL.
type webhook struct {
	url     string
	shown   string // scheme://host, all that is logged
	headers http.Header
	client  *http.Client
}

var _ target = (*webhook)(nil)

// setHeaders are the headers the webhook sets itself; Config.Headers must not name them.
var setHeaders = []string{"Host", "Content-Type", "Content-Length", "Transfer-Encoding", "Connection", "User-Agent"}

// maxDrained is how much of an answer's body is read (so that the connection can be reused) before it
// is closed: the body itself is never used.
const maxDrained = 64 << 10

func newWebhook(raw string, headers http.Header) (*webhook, error) {
	// The URL is never echoed: chat webhooks carry their secret in the path.
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, errors.New("the URL is not an absolute http(s) URL")
	}
	if u.Scheme == "http" && !oauth.IsLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("the URL %s://%s must be https: plain http is allowed to a loopback host only", u.Scheme, u.Host)
	}
	h := http.Header{}
	for name, values := range headers {
		if !httpguts.ValidHeaderFieldName(name) {
			return nil, fmt.Errorf("header name %q is not valid", name)
		}
		for _, set := range setHeaders {
			if strings.EqualFold(name, set) {
				return nil, fmt.Errorf("header %s is set by the hook itself", set)
			}
		}
		for _, v := range values {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, fmt.Errorf("header %s has a control character in its value", name) // not the value
			}
			h.Add(name, v)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &webhook{url: raw, shown: u.Scheme + "://" + u.Host, headers: h, client: &http.Client{
		Transport: tr,
		// A redirect is a misconfiguration, and following it would send the headers (a secret) to
		// wherever it points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

func (w *webhook) String() string { return "the webhook at " + w.shown }

func (w *webhook) deliver(ctx context.Context, _ Document, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST: %w", errPermanent) // the URL parsed in newWebhook; not expected
	}
	req.Header = w.headers.Clone()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "authkeeper-hook/1")
	resp, err := w.client.Do(req)
	if err != nil {
		// *url.Error repeats the whole URL; keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return errors.New("no answer: it ran past the timeout")
		}
		return fmt.Errorf("POST: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrained))
	_ = resp.Body.Close() // the answer was read; nothing to lose
	code := resp.StatusCode
	status := fmt.Errorf("answered %d %s", code, http.StatusText(code)) // not resp.Status: the server's words
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return &retryAfterError{err: status, after: retryAfter(resp.Header.Get("Retry-After"))}
	}
	return fmt.Errorf("%w; %w", status, errPermanent)
}

// retryAfter reads a Retry-After in seconds (RFC 9110 §10.2.3); an HTTP date, rare on webhooks, is
// ignored, and the backoff applies.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(min(n, 3600)) * time.Second
}
