package oauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// registrations is a transport recording the redirect_uris of every dynamic registration request.
type registrations struct {
	mu  sync.Mutex
	uri [][]string
}

func (r *registrations) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/reg") {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		var m struct {
			RedirectURIs []string `json:"redirect_uris"`
		}
		_ = json.Unmarshal(body, &m)
		r.mu.Lock()
		r.uri = append(r.uri, m.RedirectURIs)
		r.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (r *registrations) all() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.uri)
}

func callbackURI(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) + "/callback" }

// TestDynamicRegistrationUsesTheExactRedirectURIAndKeepsItsPort pins issue 11 point 3: the loopback
// port is bound before registering, the exact URI is registered and used, the port is reused by the
// next sign-in, and a port that cannot be bound any more leads to a new registration on a new port.
func TestDynamicRegistrationUsesTheExactRedirectURIAndKeepsItsPort(t *testing.T) {
	rec := &registrations{}
	b := newBench(t, benchOptions{cfg: Config{HTTPClient: &http.Client{Transport: rec}}})
	tok, g := b.signIn(t, SignInOptions{})
	requireAccepted(t, b.mcp.URL, tok)
	if g.RedirectPort == 0 {
		t.Fatal("the dynamic registration kept no port")
	}
	want := callbackURI(g.RedirectPort)
	if regs := rec.all(); len(regs) != 1 || !slices.Equal(regs[0], []string{want}) {
		t.Fatalf("registered %q, want [[%s]]", regs, want)
	}
	if got := queryOf(t, b.browser.Opened()[0]).Get("redirect_uri"); got != want {
		t.Errorf("redirect_uri = %q, want %q", got, want)
	}

	t.Run("ReusedOnTheNextSignIn", func(t *testing.T) {
		tok2, g2 := b.signIn(t, SignInOptions{Previous: &g}) // at once: the last listener still lingers
		requireAccepted(t, b.mcp.URL, tok2)
		if g2.ClientID != g.ClientID || g2.RedirectPort != g.RedirectPort || len(rec.all()) != 1 {
			t.Errorf("second sign-in: client %s port %d, %d registrations; want the same client and port, 1", g2.ClientID, g2.RedirectPort, len(rec.all()))
		}
		opened := b.browser.Opened()
		if got := queryOf(t, opened[len(opened)-1]).Get("redirect_uri"); got != want {
			t.Errorf("redirect_uri = %q, want %q", got, want)
		}
	})
	t.Run("PortTakenRegistersAgain", func(t *testing.T) {
		b.client.reclaim(g.RedirectPort, nil)
		squatter, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(g.RedirectPort))
		if err != nil {
			t.Skipf("cannot occupy the port: %v", err)
		}
		defer squatter.Close()
		tok3, g3 := b.signIn(t, SignInOptions{Previous: &g})
		requireAccepted(t, b.mcp.URL, tok3)
		regs := rec.all()
		if g3.ClientID == g.ClientID || g3.RedirectPort == g.RedirectPort || g3.RedirectPort == 0 ||
			len(regs) != 2 || !slices.Equal(regs[1], []string{callbackURI(g3.RedirectPort)}) {
			t.Errorf("with the port taken: client %s port %d, registrations %q", g3.ClientID, g3.RedirectPort, regs)
		}
	})
	t.Run("DeviceAndRefreshRegistrationsPickAPort", func(t *testing.T) {
		d, err := b.client.StartDevice(t.Context(), b.probe(t), SignInOptions{})
		if err != nil {
			t.Fatalf("StartDevice: %v", err)
		}
		regs := rec.all()
		if d.grant.RedirectPort == 0 || !slices.Equal(regs[len(regs)-1], []string{callbackURI(d.grant.RedirectPort)}) {
			t.Errorf("device registration: port %d, registered %q", d.grant.RedirectPort, regs[len(regs)-1])
		}
		b.as.Restart(t) // forgets every client: the next refresh registers again
		_, g4, err := b.client.Refresh(t.Context(), g, tok.RefreshToken)
		if !errorsIsClientInvalid(err) || g4.RedirectPort == 0 || g4.ClientID == g.ClientID {
			t.Fatalf("Refresh after restart = %v, grant port %d client %s", err, g4.RedirectPort, g4.ClientID)
		}
		regs = rec.all()
		if !slices.Equal(regs[len(regs)-1], []string{callbackURI(g4.RedirectPort)}) {
			t.Errorf("refresh re-registration: %q, want port %d", regs[len(regs)-1], g4.RedirectPort)
		}
		tok5, g5 := b.signIn(t, SignInOptions{Previous: &g4})
		requireAccepted(t, b.mcp.URL, tok5)
		if g5.ClientID != g4.ClientID || g5.RedirectPort != g4.RedirectPort {
			t.Errorf("sign-in after re-registration: client %s port %d, want %s %d", g5.ClientID, g5.RedirectPort, g4.ClientID, g4.RedirectPort)
		}
	})
}

func errorsIsClientInvalid(err error) bool {
	var oe *Error
	return errors.As(err, &oe) && oe.Class == ClassClientInvalid
}

// TestUserRegisteredPortTakenIsAnError: a port the user registered by hand cannot be changed by
// authkeeper; a taken one is reported, nothing is registered.
func TestUserRegisteredPortTakenIsAnError(t *testing.T) {
	b := newBench(t, benchOptions{})
	port := testbed.FreePort(t)
	sc := registerByHand(t, b.as, port, AuthClientSecretBasic)
	squatter, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Skipf("cannot occupy the port: %v", err)
	}
	defer squatter.Close()
	_, _, err = b.client.SignIn(t.Context(), b.probe(t), SignInOptions{Client: &sc})
	if err == nil || !strings.Contains(err.Error(), "registered redirect port") {
		t.Fatalf("SignIn with the registered port taken = %v", err)
	}
}

// TestSignInReregistersAnEvictedClientOnTheSameListener: a reused dynamic registration refused at the
// token endpoint (invalid_client) is replaced by one for the same loopback port, and the browser is
// asked once more on the same listener.
func TestSignInReregistersAnEvictedClientOnTheSameListener(t *testing.T) {
	b := newBench(t, benchOptions{})
	_, g := b.signIn(t, SignInOptions{})
	b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: http.StatusUnauthorized, Body: `{"error":"invalid_client"}`})
	tok, g2 := b.signIn(t, SignInOptions{Previous: &g})
	requireAccepted(t, b.mcp.URL, tok)
	if g2.ClientID == g.ClientID || g2.RedirectPort != g.RedirectPort {
		t.Errorf("after eviction: client %s port %d; want a new client on port %d", g2.ClientID, g2.RedirectPort, g.RedirectPort)
	}
	if n := len(b.browser.Opened()); n != 3 {
		t.Errorf("browser opened %d times, want 3 (first sign-in, refused exchange, retry)", n)
	}
	// The refused exchange's page sends the user on to the new tab; only the retry's says signed in.
	for i, want := range []string{"Signed in", "One more step", "Signed in"} {
		if v, err := b.browser.Wait(t.Context()); err != nil || !strings.Contains(v.Body, want) {
			t.Errorf("page %d: %q (%v), want %q", i+1, v.Body, err, want)
		}
	}
}

// TestEvictedClientRetryPageTellsTheTruth: the page of the callback whose code exchange found the
// reused client evicted says what happens — one more step in a new tab — and not that the sign-in
// failed; when registering again fails, it says the sign-in failed. (A loopback AS: its token
// endpoint answers invalid_client once.)
func TestEvictedClientRetryPageTellsTheTruth(t *testing.T) {
	for _, c := range []struct {
		name       string
		registerOK bool
		pages      []string
	}{
		{"Reregistered", true, []string{"One more step", "Signed in"}},
		{"RegistrationFails", false, []string{"Sign-in failed"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			as := newMiniAS(t, false, func(n int, f url.Values) (int, string) {
				if f.Get("client_id") == "old" {
					return http.StatusUnauthorized, `{"error":"invalid_client"}`
				}
				return tokenOK(n)
			})
			browser := &pageBrowser{}
			client, err := New(Config{Opener: browser, SignInTimeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			p, err := client.Probe(t.Context(), as.URL+"/mcp")
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			if !c.registerOK {
				p.AuthServer.RegistrationEndpoint = as.URL + "/no-registration"
			}
			prev := Grant{Resource: p.Resource, Issuer: p.AuthServer.Issuer, ClientID: "old", AuthMethod: AuthNone,
				Registration: RegistrationDynamic}
			_, g, err := client.SignIn(t.Context(), p, SignInOptions{Previous: &prev})
			if c.registerOK && (err != nil || g.ClientID == "old") {
				t.Fatalf("SignIn = client %q, %v; want a new registration", g.ClientID, err)
			}
			if !c.registerOK && err == nil {
				t.Fatal("SignIn succeeded without a registration")
			}
			pages := browser.Pages()
			if len(pages) != len(c.pages) {
				t.Fatalf("%d pages, want %d: %q", len(pages), len(c.pages), pages)
			}
			for i, want := range c.pages {
				if !strings.Contains(pages[i], want) {
					t.Errorf("page %d = %q, want %q", i+1, pages[i], want)
				}
			}
		})
	}
}
