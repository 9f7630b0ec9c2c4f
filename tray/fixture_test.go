//go:build !headless

package tray

import (
	"context"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"

	"github.com/authkeeper/authkeeper/app/control"
	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/app/proxy"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/oauth"
)

// fixture is a snapshot with a server in most states, for the windows' tests and screenshots.
func fixture() (engine.Snapshot, []engine.Event) {
	s := engine.Snapshot{Time: now, ProxyURL: "http://127.0.0.1:47615", Servers: []engine.ServerStatus{
		{Name: "github", State: engine.StateFresh, Expiry: now.Add(42 * time.Minute),
			Last: engine.LastRefresh{At: now.Add(-18 * time.Minute), Trigger: "schedule", Outcome: "ok"},
			Next: now.Add(27 * time.Minute), NextTrigger: "schedule"},
		{Name: "linear", State: engine.StateNeedsSignIn,
			Last: engine.LastRefresh{At: now.Add(-3 * time.Minute), Trigger: "schedule", Outcome: "invalid_grant"}},
		{Name: "notion", State: engine.StateDeferred, Expiry: now.Add(6 * time.Minute), Deferred: true,
			Last: engine.LastRefresh{At: now.Add(-54 * time.Minute), Trigger: "sign-in", Outcome: "ok"},
			Next: now.Add(4 * time.Minute), NextTrigger: "deadline"},
		{Name: "sentry", State: engine.StateDegraded, Expiry: now.Add(25 * time.Minute),
			Last: engine.LastRefresh{At: now.Add(-20 * time.Second), Trigger: "retry", Outcome: "transient"},
			Next: now.Add(40 * time.Second), NextTrigger: "retry",
			Warnings: []engine.Warning{{Quirk: oauth.QuirkIssuerMismatch, Message: "Signed in with https://auth.example.com, not the advertised https://mcp.example.com."}}},
	}, Leases: []engine.Lease{{ID: "claude-7", Label: "claude code turn", Started: now.Add(-2 * time.Minute), TTL: 30 * time.Minute}}}
	evs := []engine.Event{
		{Time: now.Add(-54 * time.Minute), Kind: engine.EventSignedIn, Server: "notion", Trigger: "user", Outcome: "ok"},
		{Time: now.Add(-18 * time.Minute), Kind: engine.EventRefreshed, Server: "github", Trigger: "schedule", Outcome: "ok"},
		{Time: now.Add(-3 * time.Minute), Kind: engine.EventNeedsSignIn, Server: "linear", Trigger: "schedule", Outcome: "invalid_grant",
			Message: "the refresh token was revoked"},
		{Time: now.Add(-2 * time.Minute), Kind: engine.EventDeferred, Server: "notion", Trigger: "schedule"},
		{Time: now.Add(-20 * time.Second), Kind: engine.EventDegraded, Server: "sentry", Trigger: "retry", Outcome: "transient",
			Message: "token endpoint answered 503"},
	}
	return s, evs
}

// capture writes canvas c as a PNG to the artifact folder.
func capture(t *testing.T, c fyne.Canvas, name string) {
	t.Helper()
	writePNG(t, c.Capture(), name)
}

// captureSideBySide writes the canvases, left to right on the theme's background, as one PNG to the
// artifact folder.
func captureSideBySide(t *testing.T, name string, cs ...fyne.Canvas) {
	t.Helper()
	const gap = 16
	var imgs []image.Image
	w, h := 0, 0
	for _, c := range cs {
		img := c.Capture()
		imgs = append(imgs, img)
		w += img.Bounds().Dx() + gap
		h = max(h, img.Bounds().Dy())
	}
	out := image.NewRGBA(image.Rect(0, 0, w-gap, h))
	draw.Draw(out, out.Bounds(), image.NewUniform(theme.Color(theme.ColorNameBackground)), image.Point{}, draw.Src)
	x := 0
	for _, img := range imgs {
		draw.Draw(out, img.Bounds().Add(image.Pt(x, 0)), img, img.Bounds().Min, draw.Src)
		x += img.Bounds().Dx() + gap
	}
	writePNG(t, out, name)
}

func writePNG(t *testing.T, img image.Image, name string) {
	t.Helper()
	dir := testbed.ArtifactDir(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", f.Name())
}

// bench is an engine (file store in a temp dir) next to a real authorization server and MCP server.
type bench struct {
	as      *testbed.AuthServer
	srv     *testbed.MCPServer
	browser *testbed.Browser
	eng     *engine.Engine
}

// newBench starts the peers and an engine whose browser is opener (nil: the scripted browser).
func newBench(t *testing.T, opener oauth.Opener) *bench {
	t.Helper()
	b := &bench{as: testbed.NewAuthServer(t, testbed.AuthServerOptions{DeviceInterval: time.Second})}
	b.srv = testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: b.as.Issuer, RequiredScopes: []string{"mcp:read"}})
	b.browser = testbed.NewBrowser(t, testbed.BrowserOptions{})
	if opener == nil {
		opener = b.browser
	}
	home := t.TempDir()
	rt, err := os.MkdirTemp("/tmp", "akrt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	paths := engine.Paths{ConfigDir: filepath.Join(home, "config"), StateDir: filepath.Join(home, "state"), RuntimeDir: rt}
	eng, err := engine.New(engine.Config{Paths: paths, ProxyAddr: "127.0.0.1:0", StoreKind: "file", Opener: opener,
		Proxy: proxy.FrontEnd, Control: control.FrontEnd})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	b.eng = eng
	return b
}

// uiLoop plays the UI goroutine for a test. fyne's test driver runs fyne.Do inline on the calling
// goroutine, so windows post their UI work here instead, and the test runs it on its own goroutine
// while it waits for a step.
type uiLoop struct {
	posts chan func()
	steps []string // appended by posted work, so only on the test goroutine
}

func newUILoop() *uiLoop { return &uiLoop{posts: make(chan func(), 256)} }

func (l *uiLoop) post(f func()) { l.posts <- f }

func (l *uiLoop) step(s string) { l.steps = append(l.steps, s) }

// wait runs posted UI work until step want has happened.
func (l *uiLoop) wait(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		for i, s := range l.steps {
			if s == want {
				l.steps = l.steps[i+1:]
				return
			}
		}
		select {
		case f := <-l.posts:
			f()
		case <-timeout:
			t.Fatalf("no step %q within 60s; steps seen: %q", want, l.steps)
		}
	}
}

// drain runs the UI work posted so far, without waiting for more.
func (l *uiLoop) drain() {
	for {
		select {
		case f := <-l.posts:
			f()
		default:
			return
		}
	}
}

// startEngine starts an engine (file store, proxy on a free port) on paths, without peers; Close it to
// simulate the app's end, before starting another on the same paths.
func startEngine(t *testing.T, paths engine.Paths) *engine.Engine {
	t.Helper()
	eng, err := engine.New(engine.Config{Paths: paths, ProxyAddr: "127.0.0.1:0", StoreKind: "file", Proxy: proxy.FrontEnd})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// tempPaths are an engine's directories in a fresh temporary home.
func tempPaths(t *testing.T) engine.Paths {
	t.Helper()
	home := t.TempDir()
	rt, err := os.MkdirTemp("/tmp", "akrt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	return engine.Paths{ConfigDir: filepath.Join(home, "config"), StateDir: filepath.Join(home, "state"), RuntimeDir: rt}
}

// until runs posted UI work until cond holds, and fails after 30 s. (A loop over wait(t, "render")
// would never end: the tray redraws every ageInterval even without events.)
func (l *uiLoop) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for !cond() {
		select {
		case f := <-l.posts:
			f()
		case <-deadline:
			t.Fatalf("not within 30s: %s", what)
		}
	}
}
