package oauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests use tiny httptest servers for answers no real authorization server gives: redirects of a
// token request, truncated bodies, servers that echo the request back.

// recorder is an http.RoundTripper that records every request it is asked to send and refuses any
// host but loopback, so a test can prove a request was never attempted.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	if !IsLoopbackHost(req.URL.Hostname()) {
		return nil, errors.New("test transport: refusing to leave loopback")
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) requests() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*http.Request(nil), r.reqs...)
}

func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestTokenRequestsNeverFollowRedirects(t *testing.T) {
	var (
		mu     sync.Mutex
		stolen []string
	)
	attacker := serve(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		stolen = append(stolen, r.Method+" "+string(body)+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		fmt.Fprint(w, `{"access_token":"x"}`)
	})
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound, http.StatusSeeOther} {
		for _, method := range []AuthMethod{AuthClientSecretBasic, AuthClientSecretPost} {
			t.Run(fmt.Sprintf("%d/%s", status, method), func(t *testing.T) {
				redirector := serve(t, func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, attacker.URL+"/steal", status)
				})
				hc := &http.Client{Timeout: 5 * time.Second}
				c, err := New(Config{HTTPClient: hc})
				if err != nil {
					t.Fatal(err)
				}
				if hc.CheckRedirect != nil {
					t.Error("New modified the configured *http.Client")
				}
				g := Grant{TokenEndpoint: redirector.URL + "/token", ClientID: "id", ClientSecret: "CS-secret", AuthMethod: method}
				_, _, err = c.Refresh(t.Context(), g, "RT-secret")
				var oe *Error
				if !errors.As(err, &oe) || oe.Status != status || oe.Class != ClassMisconfigured {
					t.Errorf("Refresh through a %d = %v, want a misconfigured *Error with status %d", status, err, status)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(stolen) != 0 {
					t.Fatalf("the redirect target received %q", stolen)
				}
			})
		}
	}
}

func TestMetadataRedirectsAreFollowedOnlyToSecureURLs(t *testing.T) {
	var doc *httptest.Server
	doc = serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, doc.URL+"/doc", http.StatusFound)
		case "/insecure":
			http.Redirect(w, r, "http://user:PW-secret@attacker.example/doc?key=KEY-secret", http.StatusFound)
		case "/doc":
			fmt.Fprint(w, `{"ok":true}`)
		}
	})
	rec := &recorder{}
	c, err := New(Config{HTTPClient: &http.Client{Transport: rec}})
	if err != nil {
		t.Fatal(err)
	}
	if body, err := c.getDocument(t.Context(), doc.URL+"/moved"); err != nil || string(body) != `{"ok":true}` {
		t.Errorf("redirect to loopback: %q, %v; want the document", body, err)
	}
	_, err = c.getDocument(t.Context(), doc.URL+"/insecure")
	if !errors.Is(err, ErrInsecureURL) {
		t.Errorf("redirect to plain http: %v, want ErrInsecureURL", err)
	}
	for _, r := range rec.requests() {
		if r.URL.Hostname() == "attacker.example" {
			t.Errorf("sent %s %s", r.Method, r.URL.Redacted())
		}
	}
	// The discovery error that carries it must not quote the target's credentials or query either.
	if e := fetchErr("resource metadata", doc.URL+"/insecure", err); e == nil || e.Class != ClassMisconfigured ||
		strings.Contains(e.Error(), "-secret") {
		t.Errorf("fetchErr = %v, want misconfigured without the target's secrets", e)
	}
}

func TestCheckURLErrorsNeverQuoteCredentialsOrQuery(t *testing.T) {
	for _, raw := range []string{
		"http://user:PW-secret@as.example/token",
		"https://user:PW-secret@as.example/token",
		"http://as.example/token?api_key=KEY-secret",
		"ftp://as.example/x?key=KEY-secret#KEY-secret",
		"http://user:PW-secret@as.example/%zz?key=KEY-secret", // unparsable
		"http://as.example:KEY-secret/",                       // unparsable port
	} {
		err := checkURL(raw)
		if !errors.Is(err, ErrInsecureURL) {
			t.Errorf("checkURL(%q) = %v, want ErrInsecureURL", raw, err)
			continue
		}
		if strings.Contains(err.Error(), "-secret") {
			t.Errorf("checkURL error quotes a secret: %v", err)
		}
	}
}

// truncated answers with a status and a Content-Length longer than the body it sends, then hangs up:
// the client's read fails mid-body.
func truncated(t *testing.T, status int) *httptest.Server {
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"access", status, http.StatusText(status))
		_ = buf.Flush()
	})
}

func TestABodyCutOffMidwayIsTransient(t *testing.T) {
	for _, status := range []int{200, 400, 401} {
		s := truncated(t, status)
		c, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		g := Grant{TokenEndpoint: s.URL, ClientID: "id", Registration: RegistrationDynamic, RegistrationEndpoint: s.URL + "/register"}
		_, g2, err := c.Refresh(t.Context(), g, "RT-secret")
		if !errors.Is(err, ErrTransient) {
			t.Errorf("HTTP %d cut off: %v, want transient", status, err)
		}
		if g2.ClientID != "id" {
			t.Errorf("HTTP %d cut off: registration replaced", status)
		}
	}
}

func TestProbeClosesTheSessionWithTheCallersContext(t *testing.T) {
	mcp := serve(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodPost {
			w.Header().Set("Mcp-Session-Id", "session-1")
		}
	})
	rec := &recorder{}
	c, err := New(Config{HTTPClient: &http.Client{Transport: rec}})
	if err != nil {
		t.Fatal(err)
	}
	type key struct{}
	ctx := context.WithValue(t.Context(), key{}, "probe")
	p, err := c.Probe(ctx, mcp.URL)
	if err != nil || p.Requirement != NoAuth {
		t.Fatalf("Probe = %v, %v; want NoAuth", p, err)
	}
	var deletes int
	for _, r := range rec.requests() {
		if r.Method != http.MethodDelete {
			continue
		}
		deletes++
		if r.Header.Get("Mcp-Session-Id") != "session-1" || r.Context().Value(key{}) != "probe" {
			t.Errorf("DELETE session %q without the caller's context", r.Header.Get("Mcp-Session-Id"))
		}
	}
	if deletes != 1 {
		t.Errorf("%d DELETEs, want 1", deletes)
	}
}

// hostileTokenEndpoints are failures of a token request that might carry its secrets back: servers
// echoing the request body into error_description (in a 400 and in a 200), into an undecodable 200, or
// its Authorization header (client_secret_basic's base64 credentials) into a 401's, as sent and
// decoded then encoded again without the form-encoding, a redirect, a body cut off, a timeout and a
// closed port.
func hostileTokenEndpoints(t *testing.T) map[string]string {
	echo := func(status int, format string) string {
		return serve(t, func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.WriteHeader(status)
			fmt.Fprintf(w, format, string(body))
		}).URL
	}
	hang := serve(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/token"
	l.Close()
	return map[string]string{
		"EchoIn400":   echo(400, `{"error":"invalid_grant","error_description":%q}`),
		"EchoIn200":   echo(200, `{"error":"authorization_pending","error_description":%q}`),
		"EchoNotJSON": echo(200, `{"access_token": %s`),
		"EchoAuthorizationIn401": serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":"invalid_client","error_description":%q}`, "bad Authorization: "+r.Header.Get("Authorization"))
		}).URL,
		"EchoReencodedBasicIn401": serve(t, func(w http.ResponseWriter, r *http.Request) {
			id, secret, _ := r.BasicAuth()
			id, _ = url.QueryUnescape(id)
			secret, _ = url.QueryUnescape(secret)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":"invalid_client","error_description":%q}`, "bad credentials "+base64.StdEncoding.EncodeToString([]byte(id+":"+secret)))
		}).URL,
		"Redirect": serve(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://attacker.example/?"+r.URL.RawQuery, http.StatusTemporaryRedirect)
		}).URL + "/token?k=KEY-secret",
		"CutOff":  truncated(t, 200).URL,
		"Timeout": hang.URL,
		"Closed":  closed,
	}
}

// printed renders err every way a log or event line might.
func printed(err error) string {
	return fmt.Sprintf("%v|%+v|%#v|%s|%q", err, err, err, err, err)
}

func TestFailedTokenRequestsNeverCarryTheirSecrets(t *testing.T) {
	const clientSecret = "CS-secret/+=" // escapes in a form body
	keyPEM, _ := pemKey(t, "ec")
	keyBody := strings.Split(keyPEM, "\n")[1] // a line of the key's base64
	// "eyJ" starts every base64url JSON object: a client assertion's header or payload. HTTP Basic
	// carries base64 of id:secret, form-encoded first (RFC 6749 §2.3.1) or, as some servers re-encode
	// it, raw; unpadded, so that an echo without the padding counts too.
	basic := func(pair string) string { return base64.RawStdEncoding.EncodeToString([]byte(pair)) }
	secrets := []string{"RT-secret", "CS-secret", url.QueryEscape(clientSecret), "CODE-secret", "CV-secret", "DC-secret", "AT-secret", "KEY-secret", "eyJ", keyBody,
		basic("id:" + url.QueryEscape(clientSecret)), basic("id:" + clientSecret)}
	for name, endpoint := range hostileTokenEndpoints(t) {
		t.Run(name, func(t *testing.T) {
			clock := newFakeClock()
			c, err := New(Config{HTTPClient: &http.Client{Timeout: 200 * time.Millisecond, Transport: &recorder{}}, Clock: clock, After: clock.After})
			if err != nil {
				t.Fatal(err)
			}
			errs := map[string]error{}
			for _, method := range []AuthMethod{AuthClientSecretPost, AuthClientSecretBasic, AuthPrivateKeyJWT} {
				g := Grant{TokenEndpoint: endpoint, RevocationEndpoint: endpoint, ClientID: "id", ClientSecret: clientSecret, AuthMethod: method,
					Issuer: "https://as.example", PrivateKey: keyPEM}
				if method == AuthPrivateKeyJWT {
					g.ClientSecret = ""
				}
				_, _, errs["refresh "+string(method)] = c.Refresh(t.Context(), g, "RT-secret")
				_, errs["code exchange "+string(method)] = c.completeAuthorization(t.Context(), &ASMetadata{Issuer: "https://as.example"}, g,
					url.Values{"code": {"CODE-secret"}, "state": {"s"}}, "s", "CV-secret", "http://127.0.0.1/callback")
				d := &DeviceAuthorization{deviceCode: "DC-secret", grant: g, Interval: time.Second, ExpiresAt: clock.Now().Add(3 * time.Second)}
				_, _, errs["device poll "+string(method)] = c.PollDevice(t.Context(), d)
				cc := g
				cc.GrantType = GrantClientCredentials
				_, _, errs["client credentials "+string(method)] = c.Refresh(t.Context(), cc, "")
				// A 200 is success for revocation (RFC 7009 §2.2) whatever its body, so nil is fine here.
				if err := c.Revoke(t.Context(), g, Token{AccessToken: "AT-secret", RefreshToken: "RT-secret"}); err != nil {
					errs["revoke "+string(method)] = err
				}
			}
			for op, err := range errs {
				if err == nil {
					t.Errorf("%s succeeded against a hostile endpoint", op)
					continue
				}
				s := printed(err)
				for _, secret := range secrets {
					if strings.Contains(s, secret) {
						t.Errorf("%s: error carries %q: %s", op, secret, s)
					}
				}
			}
		})
	}
}
