package oauth

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// deviceBench is a bench whose client waits on a fake clock, so polling at 5 s costs milliseconds.
func deviceBench(t *testing.T, as testbed.AuthServerOptions) (*bench, *fakeClock) {
	clock := newFakeClock()
	return newBench(t, benchOptions{as: as, cfg: Config{Clock: clock, After: clock.After}}), clock
}

func TestDeviceSignInPollsAtTheDefaultIntervalUntilApproved(t *testing.T) {
	for _, c := range []struct {
		name     string
		interval time.Duration // sent by the AS; 0: omitted
		want     time.Duration
	}{
		{"IntervalOmitted", 0, 5 * time.Second},
		{"IntervalSent", 2 * time.Second, 2 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, clock := deviceBench(t, testbed.AuthServerOptions{DeviceInterval: c.interval})
			d, err := b.client.StartDevice(t.Context(), b.probe(t), SignInOptions{})
			if err != nil {
				t.Fatalf("StartDevice: %v", err)
			}
			if d.UserCode == "" || d.VerificationURI == "" || d.Interval != c.want {
				t.Fatalf("device authorization = %v interval %v, want user code, URI and interval %v", d, d.Interval, c.want)
			}
			approved := make(chan error, 1)
			go func() {
				// Let a few polls see authorization_pending first.
				for len(clock.Waits()) < 3 {
					time.Sleep(5 * time.Millisecond) // polling the fake clock, owned by another goroutine
				}
				approved <- b.browser.ApproveDevice(t.Context(), d.VerificationURI, d.UserCode)
			}()
			tok, g, err := b.client.PollDevice(t.Context(), d)
			if err != nil {
				t.Fatalf("PollDevice: %v", err)
			}
			if err := <-approved; err != nil {
				t.Fatalf("approve: %v", err)
			}
			requireAccepted(t, b.mcp.URL, tok)
			if g.Resource != b.mcp.URL || g.ClientID == "" {
				t.Errorf("grant = %v", g)
			}
			for _, w := range clock.Waits() {
				if w != c.want {
					t.Fatalf("waits = %v, want every one %v", clock.Waits(), c.want)
				}
			}
		})
	}
}

// TestDeviceSignInSlowsDownWhenAsked uses the AS's fault hook to answer slow_down twice.
func TestDeviceSignInSlowsDownWhenAsked(t *testing.T) {
	b, clock := deviceBench(t, testbed.AuthServerOptions{})
	d, err := b.client.StartDevice(t.Context(), b.probe(t), SignInOptions{})
	if err != nil {
		t.Fatalf("StartDevice: %v", err)
	}
	b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 400, Body: `{"error":"slow_down"}`, Count: 2})
	if err := b.browser.ApproveDevice(t.Context(), d.VerificationURI, d.UserCode); err != nil {
		t.Fatalf("approve: %v", err)
	}
	if _, _, err := b.client.PollDevice(t.Context(), d); err != nil {
		t.Fatalf("PollDevice: %v", err)
	}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second}
	if got := clock.Waits(); !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
}

func TestDeviceSignInStopsAtExpiry(t *testing.T) {
	b, clock := deviceBench(t, testbed.AuthServerOptions{DeviceInterval: 60 * time.Second})
	d, err := b.client.StartDevice(t.Context(), b.probe(t), SignInOptions{})
	if err != nil {
		t.Fatalf("StartDevice: %v", err)
	}
	_, _, err = b.client.PollDevice(t.Context(), d)
	var oe *Error
	if !errors.As(err, &oe) || oe.Code != "expired_token" || !errors.Is(err, ErrReauthRequired) {
		t.Fatalf("PollDevice = %v, want expired_token", err)
	}
	if now := clock.Now(); now.Before(d.ExpiresAt) || now.After(d.ExpiresAt.Add(d.Interval)) {
		t.Errorf("stopped at %v, want at expiry %v", now, d.ExpiresAt)
	}
}

func TestDeviceSignInDenied(t *testing.T) {
	b, _ := deviceBench(t, testbed.AuthServerOptions{})
	d, err := b.client.StartDevice(t.Context(), b.probe(t), SignInOptions{})
	if err != nil {
		t.Fatalf("StartDevice: %v", err)
	}
	b.browser.SetOptions(testbed.BrowserOptions{Deny: true})
	if err := b.browser.ApproveDevice(t.Context(), d.VerificationURI, d.UserCode); err != nil {
		t.Fatalf("deny: %v", err)
	}
	_, _, err = b.client.PollDevice(t.Context(), d)
	var oe *Error
	if !errors.As(err, &oe) || oe.Code != "access_denied" || oe.Class != ClassReauth {
		t.Fatalf("PollDevice = %v, want access_denied", err)
	}
}

// TestDeviceSignInReregistersAnEvictedClient: StartDevice with a registration the restarted AS forgot
// registers once more by itself.
func TestDeviceSignInReregistersAnEvictedClient(t *testing.T) {
	b, _ := deviceBench(t, testbed.AuthServerOptions{})
	p := b.probe(t)
	d, err := b.client.StartDevice(t.Context(), p, SignInOptions{})
	if err != nil {
		t.Fatalf("StartDevice: %v", err)
	}
	old := d.grant
	b.as.Restart(t)
	d, err = b.client.StartDevice(t.Context(), p, SignInOptions{Previous: &old})
	if err != nil {
		t.Fatalf("StartDevice with an evicted client: %v", err)
	}
	if d.grant.ClientID == old.ClientID {
		t.Fatal("client id unchanged after eviction")
	}
	if err := b.browser.ApproveDevice(t.Context(), d.VerificationURI, d.UserCode); err != nil {
		t.Fatalf("approve: %v", err)
	}
	tok, _, err := b.client.PollDevice(t.Context(), d)
	if err != nil {
		t.Fatalf("PollDevice: %v", err)
	}
	requireAccepted(t, b.mcp.URL, tok)
}

// TestDeviceSignInKeepsPollingWhenPendingComesWith200 answers the first polls the way GitHub does:
// HTTP 200 carrying `error: authorization_pending`.
func TestDeviceSignInKeepsPollingWhenPendingComesWith200(t *testing.T) {
	b, clock := deviceBench(t, testbed.AuthServerOptions{})
	d, err := b.client.StartDevice(t.Context(), b.probe(t), SignInOptions{})
	if err != nil {
		t.Fatalf("StartDevice: %v", err)
	}
	if err := b.browser.ApproveDevice(t.Context(), d.VerificationURI, d.UserCode); err != nil {
		t.Fatalf("approve: %v", err)
	}
	b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 200, Body: `{"error":"authorization_pending"}`, Count: 2})
	tok, g, err := b.client.PollDevice(t.Context(), d)
	if err != nil {
		t.Fatalf("PollDevice: %v", err)
	}
	requireAccepted(t, b.mcp.URL, tok)
	if !g.HasQuirk(QuirkErrorsIn200) {
		t.Errorf("grant quirks %q lack errors-in-200", g.Quirks)
	}
	if n := len(clock.Waits()); n != 3 {
		t.Errorf("%d polls, want 3 (two pending, then the token)", n)
	}
}

// TestDeviceAuthorizationReadsNumbersLeniently serves device authorization responses no oidc-provider
// sends but other providers do: numbers as strings, and an expires_in that overflows time.Duration.
func TestDeviceAuthorizationReadsNumbersLeniently(t *testing.T) {
	const year = maxExpiresIn * time.Second
	for _, c := range []struct {
		name      string
		expiresIn string
		interval  string
		lifetime  time.Duration
		every     time.Duration
	}{
		{"Strings", `"900"`, `"7"`, 900 * time.Second, 7 * time.Second},
		{"HugeNumber", `99999999999`, `3`, year, 3 * time.Second},
		{"HugeString", `"99999999999"`, `null`, year, 5 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, clock := deviceBench(t, testbed.AuthServerOptions{})
			p := b.probe(t)
			b.as.Fault(t, testbed.Fault{Endpoint: "device_authorization", Status: 200, Body: `{"device_code":"dc","user_code":"UC",` +
				`"verification_uri":"https://as.example/device","expires_in":` + c.expiresIn + `,"interval":` + c.interval + `}`})
			d, err := b.client.StartDevice(t.Context(), p, SignInOptions{})
			if err != nil {
				t.Fatalf("StartDevice: %v", err)
			}
			if got := d.ExpiresAt.Sub(clock.Now()); got != c.lifetime || d.Interval != c.every {
				t.Errorf("expires in %v, interval %v; want %v, %v", got, d.Interval, c.lifetime, c.every)
			}
		})
	}
}

// TestDeviceSignInKeepsPollingThroughTransientFailures: the user may approve while the AS is briefly
// unreachable or overloaded; polling goes on (honouring Retry-After) until the code expires.
func TestDeviceSignInKeepsPollingThroughTransientFailures(t *testing.T) {
	t.Run("ASDown", func(t *testing.T) {
		b, clock := deviceBench(t, testbed.AuthServerOptions{})
		d, err := b.client.StartDevice(t.Context(), b.probe(t), SignInOptions{})
		if err != nil {
			t.Fatalf("StartDevice: %v", err)
		}
		if err := b.browser.ApproveDevice(t.Context(), d.VerificationURI, d.UserCode); err != nil {
			t.Fatalf("approve: %v", err)
		}
		b.as.Stop(t)
		type result struct {
			tok Token
			err error
		}
		done := make(chan result, 1)
		go func() {
			tok, _, err := b.client.PollDevice(t.Context(), d)
			done <- result{tok, err}
		}()
		for len(clock.Waits()) < 3 {
			select {
			case r := <-done:
				b.as.Start(t)
				t.Fatalf("PollDevice gave up while the AS was down: %v", r.err)
			case <-time.After(5 * time.Millisecond): // polling the fake clock, owned by another goroutine
			}
		}
		b.as.Start(t)
		r := <-done
		if r.err != nil {
			t.Fatalf("PollDevice with the AS down for two polls: %v", r.err)
		}
		requireAccepted(t, b.mcp.URL, r.tok)
	})
	t.Run("503RetryAfter", func(t *testing.T) {
		b, clock := deviceBench(t, testbed.AuthServerOptions{})
		d, err := b.client.StartDevice(t.Context(), b.probe(t), SignInOptions{})
		if err != nil {
			t.Fatalf("StartDevice: %v", err)
		}
		if err := b.browser.ApproveDevice(t.Context(), d.VerificationURI, d.UserCode); err != nil {
			t.Fatalf("approve: %v", err)
		}
		b.as.Fault(t, testbed.Fault{Endpoint: "token", Status: 503, RetryAfter: "30", Count: 2})
		tok, _, err := b.client.PollDevice(t.Context(), d)
		if err != nil {
			t.Fatalf("PollDevice through two 503s: %v", err)
		}
		requireAccepted(t, b.mcp.URL, tok)
		want := []time.Duration{5 * time.Second, 30 * time.Second, 30 * time.Second}
		if got := clock.Waits(); !slices.Equal(got, want) {
			t.Errorf("waits = %v, want %v", got, want)
		}
	})
}

// pollTimes is a transport recording the fake clock's time of every token request.
type pollTimes struct {
	clock *fakeClock
	mu    sync.Mutex
	at    []time.Time
}

func (p *pollTimes) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/token") {
		p.mu.Lock()
		p.at = append(p.at, p.clock.Now())
		p.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestDeviceSignInNeverPollsAtOrAfterExpiry: 600 s codes polled every 7 s; the last wait would end
// past the expiry, and that poll must not be sent.
func TestDeviceSignInNeverPollsAtOrAfterExpiry(t *testing.T) {
	clock := newFakeClock()
	polls := &pollTimes{clock: clock}
	b := newBench(t, benchOptions{as: testbed.AuthServerOptions{DeviceInterval: 7 * time.Second},
		cfg: Config{Clock: clock, After: clock.After, HTTPClient: &http.Client{Transport: polls}}})
	d, err := b.client.StartDevice(t.Context(), b.probe(t), SignInOptions{})
	if err != nil {
		t.Fatalf("StartDevice: %v", err)
	}
	if _, _, err = b.client.PollDevice(t.Context(), d); !errors.Is(err, ErrReauthRequired) {
		t.Fatalf("PollDevice = %v, want expired_token", err)
	}
	polls.mu.Lock()
	defer polls.mu.Unlock()
	if len(polls.at) == 0 || d.ExpiresAt.Sub(polls.at[len(polls.at)-1]) > d.Interval {
		t.Fatalf("polled at %v, want polls up to the last interval before %v", polls.at, d.ExpiresAt)
	}
	for _, at := range polls.at {
		if !at.Before(d.ExpiresAt) {
			t.Errorf("polled at %v, at or after expiry %v", at, d.ExpiresAt)
		}
	}
}
