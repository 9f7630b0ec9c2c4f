package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxBody bounds every response body read from a server we do not control.
const maxBody = 1 << 20

// errTooLarge reports a response body over maxBody.
var errTooLarge = fmt.Errorf("response body exceeds %d bytes", maxBody)

// readBody reads at most maxBody bytes and fails on more, rather than decoding a truncated document.
func readBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, errTooLarge
	}
	return b, nil
}

// statusError is a non-2xx answer to a metadata GET.
type statusError struct{ status int }

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d", e.status) }

// maxRedirects is net/http's own limit, which a custom CheckRedirect must apply itself.
const maxRedirects = 10

// refuseRedirect returns a CheckRedirect that never lets a request's secrets follow a redirect: a
// non-GET request (a token, device, registration or revocation POST, whose body and Basic header hold
// refresh tokens, codes, verifiers and client secrets) is not redirected at all — the 3xx answer is
// returned as is and reported by its status — and a GET is redirected only to a URL checkURL accepts
// (https, or http on loopback). next, the configured client's own CheckRedirect, then has its say.
func refuseRedirect(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if req.Method != http.MethodGet || via[0].Method != http.MethodGet {
			return http.ErrUseLastResponse
		}
		if err := checkURL(req.URL.String()); err != nil {
			return fmt.Errorf("redirect: %w", err)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
}

// getDocument GETs a JSON document. It refuses insecure URLs, and does not follow redirects to them
// (refuseRedirect).
func (c *Client) getDocument(ctx context.Context, rawURL string) ([]byte, error) {
	b, _, err := c.fetchDocument(ctx, rawURL)
	return b, err
}

// fetchDocument is getDocument, also returning the URL that finally answered after redirects.
func (c *Client) fetchDocument(ctx context.Context, rawURL string) ([]byte, string, error) {
	if err := checkURL(rawURL); err != nil {
		return nil, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return nil, "", &statusError{resp.StatusCode}
	}
	b, err := readBody(resp.Body)
	return b, resp.Request.URL.String(), err
}

// postForm POSTs an application/x-www-form-urlencoded request to an AS endpoint, authenticating as the
// grant's client, and decodes a 2xx JSON answer into out (out may be nil). A non-2xx answer becomes an
// *Error classified from its OAuth `error` field and status.
func (c *Client) postForm(ctx context.Context, op, endpoint string, form url.Values, cl clientAuth, out any) error {
	if err := checkURL(endpoint); err != nil {
		return &Error{Op: op, Class: ClassMisconfigured, Err: err}
	}
	if err := cl.apply(form); err != nil {
		return &Error{Op: op, Class: ClassMisconfigured, Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return &Error{Op: op, Class: ClassMisconfigured, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	cl.applyHeader(req)
	secrets := cl.secrets()
	for _, k := range secretParams {
		secrets = append(secrets, form[k]...)
	}
	return c.do(op, req, out, secrets...)
}

// secretParams are the request parameters whose values must never reach an error, even when a server
// echoes them back in error_description.
var secretParams = []string{"refresh_token", "code", "code_verifier", "client_secret", "device_code", "token",
	"client_assertion", "assertion", "subject_token"}

// scrub replaces every secret in s, as sent and as form-encoded. A secret that travels in another
// encoding (HTTP Basic's base64) is listed in that encoding too, by whoever lists it (clientAuth.secrets).
func scrub(s string, secrets []string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[redacted]")
			s = strings.ReplaceAll(s, url.QueryEscape(v), "[redacted]")
		}
	}
	return s
}

// do sends req and decodes the answer as postForm describes. secrets are the values req carries, to be
// scrubbed from an error_description that echoes them.
func (c *Client) do(op string, req *http.Request, out any, secrets ...string) error {
	resp, err := c.http.Do(req)
	if err != nil {
		return networkError(op, redactURLError(err))
	}
	defer resp.Body.Close()
	body, err := readBody(resp.Body)
	if err != nil {
		class := ClassTransient // the connection failed mid-body, whatever the status said
		if errors.Is(err, errTooLarge) {
			class = Classify("", resp.StatusCode)
		}
		return &Error{Op: op, Status: resp.StatusCode, Class: class, Err: redactURLError(err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return responseError(op, resp, body, c.clock.Now(), secrets)
	}
	if e := responseError(op, resp, body, c.clock.Now(), secrets); e.Code != "" {
		// Some servers (GitHub's token and device endpoints) answer errors with 200 and an `error`
		// field. Classify the code as the 400 RFC 6749 §5.2 prescribes, so that authorization_pending
		// keeps a device flow polling instead of reading as a malformed token response. The *Error keeps
		// Status 200, from which the grant records QuirkErrorsIn200 (errorIn200, issued.teach).
		e.Class = Classify(e.Code, http.StatusBadRequest)
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &Error{Op: op, Status: resp.StatusCode, Class: ClassMisconfigured, Err: fmt.Errorf("decode response: %w", err)}
	}
	return nil
}

// responseError builds the *Error for a non-2xx answer. The body is parsed as an RFC 6749 §5.2 error;
// anything else is summarised by the status alone (the body is never echoed: it might hold a secret).
func responseError(op string, resp *http.Response, body []byte, now time.Time, secrets []string) *Error {
	var e struct {
		Code        string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &e) // a non-JSON error body leaves the fields empty, which is what we want
	return &Error{
		Op:          op,
		Code:        e.Code,
		Description: truncate(scrub(e.Description, secrets), 512),
		Status:      resp.StatusCode,
		Class:       Classify(e.Code, resp.StatusCode),
		RetryAfter:  retryAfter(resp.Header, now),
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// redactURLError drops the URL from a *url.Error: our URLs carry no secrets today, but a query string
// might one day, and the operation and cause are what the user needs.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, RedactURL(ue.URL), ue.Err)
	}
	return err
}

// RedactURL is how a URL is shown in an error, a String or a log line: scheme, host and path, without
// user info, query or fragment, which may hold a credential (an API key in an MCP server's query).
// An unparseable URL shows as "?".
func RedactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	return u.Scheme + "://" + u.Host + u.Path
}
