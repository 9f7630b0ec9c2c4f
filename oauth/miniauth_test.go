package oauth

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// miniAS is an MCP server and its authorization server on one loopback origin, a few lines of each:
// for tests whose point is one answer of the token endpoint that the bench's oidc-provider would have
// to be forced into, and which must run where the bench's Node prerequisites are missing. The MCP
// server is of the 2025-03-26 revision (no protected-resource metadata) unless prm is set; the AS
// has RFC 8414 metadata, registration, a device endpoint and RFC 9207 iss.
type miniAS struct {
	*httptest.Server
	// token answers the n-th token request (from 0); nil: tokenOK.
	token func(n int, form url.Values) (status int, body string)

	mu     sync.Mutex
	forms  []url.Values // token requests
	authz  []url.Values // authorization requests
	nextID int
}

// tokenOK is a successful token answer, numbered n, with a refresh token.
func tokenOK(n int) (int, string) {
	return http.StatusOK, fmt.Sprintf(`{"access_token":"AT-%d","token_type":"Bearer","expires_in":3600,"refresh_token":"RT-%d"}`, n, n)
}

func newMiniAS(t *testing.T, prm bool, token func(int, url.Values) (int, string)) *miniAS {
	m := &miniAS{token: token}
	m.Server = serve(t, func(w http.ResponseWriter, r *http.Request) {
		origin := "http://" + r.Host
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/mcp":
			w.Header().Set("WWW-Authenticate", "Bearer")
			w.WriteHeader(http.StatusUnauthorized)
		case "/.well-known/oauth-protected-resource/mcp":
			if !prm {
				http.NotFound(w, r)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"resource": origin + "/mcp", "authorization_servers": []string{origin}})
		case "/.well-known/oauth-authorization-server":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": origin, "authorization_endpoint": origin + "/authorize",
				"token_endpoint": origin + "/token", "registration_endpoint": origin + "/register",
				"device_authorization_endpoint": origin + "/device", "code_challenge_methods_supported": []string{"S256"},
				"authorization_response_iss_parameter_supported": true})
		case "/authorize":
			q := r.URL.Query()
			m.mu.Lock()
			m.authz = append(m.authz, q)
			n := len(m.authz)
			m.mu.Unlock()
			u, err := url.Parse(q.Get("redirect_uri"))
			if err != nil {
				http.Error(w, "bad redirect_uri", http.StatusBadRequest)
				return
			}
			u.RawQuery = url.Values{"code": {fmt.Sprint("CODE-", n)}, "state": {q.Get("state")}, "iss": {origin}}.Encode()
			http.Redirect(w, r, u.String(), http.StatusFound)
		case "/token":
			_ = r.ParseForm()
			m.mu.Lock()
			n := len(m.forms)
			m.forms = append(m.forms, r.PostForm)
			m.mu.Unlock()
			status, body := tokenOK(n)
			if m.token != nil {
				status, body = m.token(n, r.PostForm)
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		case "/register":
			m.mu.Lock()
			m.nextID++
			id := m.nextID
			m.mu.Unlock()
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"client_id":"client-%d"}`, id)
		case "/device":
			fmt.Fprintf(w, `{"device_code":"DC","user_code":"UC","verification_uri":%q,"expires_in":600,"interval":1}`, origin+"/verify")
		default:
			http.NotFound(w, r)
		}
	})
	return m
}

// tokenForms returns the token requests received so far.
func (m *miniAS) tokenForms() []url.Values {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]url.Values(nil), m.forms...)
}

// authzQueries returns the authorization requests received so far.
func (m *miniAS) authzQueries() []url.Values {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]url.Values(nil), m.authz...)
}

// pageBrowser is an Opener that follows each authorization URL to the loopback callback, as a browser
// whose user approves at once would, and keeps the page each callback answered, in the order opened.
type pageBrowser struct {
	wg    sync.WaitGroup
	mu    sync.Mutex
	pages []string
}

func (b *pageBrowser) Open(u string) error {
	b.wg.Add(1)
	defer b.wg.Done()
	b.mu.Lock()
	i := len(b.pages)
	b.pages = append(b.pages, "")
	b.mu.Unlock()
	page := "(no page)"
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(u); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page = string(body)
	}
	b.mu.Lock()
	b.pages[i] = page
	b.mu.Unlock()
	return nil
}

// Pages waits for every page opened to be answered and returns them.
func (b *pageBrowser) Pages() []string {
	b.wg.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.pages...)
}
