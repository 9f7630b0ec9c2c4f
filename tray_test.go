//go:build linux

// The tray on a Linux desktop (Xvfb, dunst, a FIFO standing in for xdg-open). The Windows tray is tested
// under Wine by internal/wine.

package main

import (
	"bufio"
	"context"
	"github.com/authkeeper/authkeeper/internal/e2e"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// trayDesktop is the real binary on a virtual desktop (Xvfb, dunst, a StatusNotifierWatcher, the
// keyring on the same session bus) next to a real AS and MCP server, with a fake xdg-open that hands
// every URL the app opens to the scripted browser.
type trayDesktop struct {
	bin     string
	env     []string
	display *testbed.Display
	watcher *testbed.Watcher
	browser *testbed.Browser
	mcp     *testbed.MCPServer
	as      *testbed.AuthServer
	home    string
	rt      string
}

func newTrayDesktop(t *testing.T) *trayDesktop {
	t.Helper()
	td := &trayDesktop{bin: e2e.MustBinary(t), display: testbed.NewDisplay(t)}
	td.watcher = testbed.NewWatcher(t, td.display.Bus)
	testbed.KeyringOn(t, td.display.Bus)
	td.as = testbed.NewAuthServer(t, testbed.AuthServerOptions{})
	td.mcp = testbed.GoMCPServer(t, testbed.MCPServerOptions{Issuer: td.as.Issuer, RequiredScopes: []string{"mcp:read"}})
	td.browser = testbed.NewBrowser(t, testbed.BrowserOptions{})

	home := t.TempDir()
	td.home = home
	rt, err := os.MkdirTemp("/tmp", "akrt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(rt) })
	td.rt = rt
	fakeBin := filepath.Join(home, "bin")
	td.fakeXDGOpen(t, fakeBin)
	td.env = append([]string{"HOME=" + home, "PATH=" + fakeBin + ":" + os.Getenv("PATH"), "XDG_RUNTIME_DIR=" + rt,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_STATE_HOME=" + filepath.Join(home, ".state"),
		"AUTHKEEPER_PROXY_ADDR=127.0.0.1:0"}, td.display.Env()...)
	// Past the first run, which opens the Add server window (TestTrayFirstRunOpensTheAddWindowOnce):
	// the other tests start an idle tray.
	dir := filepath.Join(home, ".config", "authkeeper")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	settings := `{"servers":[],"prefs":{"store":"keychain","notifications":true,"first_run_done":true}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(settings), 0o600); err != nil {
		t.Fatal(err)
	}
	return td
}

// fakeXDGOpen puts an xdg-open in dir that writes its URL to a FIFO the test reads and opens in the
// scripted browser (pkg/browser runs xdg-open and ignores $BROWSER).
func (td *trayDesktop) fakeXDGOpen(t *testing.T, dir string) {
	t.Helper()
	fifo := filepath.Join(dir, "opened")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nprintf '%s\\n' \"$1\" > '" + fifo + "'\n"
	if err := os.WriteFile(filepath.Join(dir, "xdg-open"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	// Opened read-write, the FIFO always has a writer: reads never see EOF between two xdg-open runs.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	go func() {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			_ = td.browser.Open(sc.Text())
		}
	}()
}

// cli runs an authkeeper command against the running app and returns its output.
func (td *trayDesktop) cli(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(td.bin, args...)
	cmd.Env = td.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("authkeeper %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// waitMenu reads the tray menu until it has an item starting with prefix (the tray redraws shortly
// after each event; the menu lives in another process).
func (td *trayDesktop) waitMenu(t *testing.T, item testbed.TrayItem, prefix string) testbed.MenuItem {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		menu := td.watcher.Menu(t, item)
		if it, ok := testbed.Find(menu, prefix); ok {
			return it
		}
		if time.Now().After(deadline) {
			t.Fatalf("tray menu has no %q within 15s: %+v", prefix, menu)
		}
		time.Sleep(100 * time.Millisecond) // polling another process
	}
}

// TestTrayAppNotifiesCoalescesSignsInAgainAndShowsStatusOnSecondLaunch runs the real app on a virtual
// desktop: it registers its tray item; three servers added from the CLI appear in the menu and the
// tooltip; "Refresh now" brings one "Refreshed auth for a" notification; a burst of three refreshes
// brings one coalesced notification; "Sign in again" drives the browser to a completed sign-in
// ("Signed in to a"); "Start at login" writes and removes the XDG autostart entry; an AS that forgets
// its clients brings exactly one "b needs you to sign in again"; a second launch shows the Status
// window and exits; Quit ends the app cleanly.
func TestTrayAppNotifiesCoalescesSignsInAgainAndShowsStatusOnSecondLaunch(t *testing.T) {
	td := newTrayDesktop(t)
	before := td.topWindows(t)
	cmd := exec.Command(td.bin)
	cmd.Env = td.env
	p := testbed.StartProcess(t, "authkeeper", cmd)
	if banner := p.WaitLine(t, "authkeeper ", 30*time.Second); !strings.Contains(banner, "engine running (with tray)") {
		t.Fatalf("banner %q: want the tray, not the headless engine", banner)
	}
	item := td.watcher.WaitItem(t, 30*time.Second)
	td.waitMenu(t, item, "Add your first server…")
	// The idle tray is D-Bus only: fyne's event loop (GLFW, 60 wake-ups a second) has not started, so
	// the app has not even created GLFW's helper window on the X server.
	if after := td.topWindows(t); after != before {
		t.Errorf("the idle tray made the X server's top-level windows go from %d to %d: the GUI loop started", before, after)
	}

	for _, name := range []string{"a", "b", "c"} {
		if out := td.cli(t, "add", td.mcp.URL, "--name", name); !strings.Contains(out, "Added "+name) {
			t.Fatalf("add %s: %s", name, out)
		}
	}
	td.waitMenu(t, item, "c — fresh, expires in 59 min")
	tip := td.watcher.Property(t, item, "ToolTip").String()
	if !strings.Contains(tip, "authkeeper: All 3 servers fresh") || !strings.Contains(tip, "b — fresh, expires in") {
		t.Errorf("tooltip %s", tip)
	}

	td.waitMenu(t, item, "Refresh now")
	td.watcher.Click(t, item, "Refresh now") // the first server's: a
	n := td.display.WaitNotification(t, "Refreshed auth for", 30*time.Second)
	if n.Summary != "Refreshed auth for a" {
		t.Errorf("notification %q, want \"Refreshed auth for a\"", n.Summary)
	}

	for _, name := range []string{"a", "b", "c"} {
		td.cli(t, "refresh", name)
	}
	td.display.WaitNotification(t, "Refreshed auth for a, b and c", 30*time.Second)
	refreshes := 0
	for _, n := range td.display.Notifications() {
		if strings.HasPrefix(n.Summary, "Refreshed auth") {
			refreshes++
		}
	}
	if refreshes != 2 {
		t.Errorf("%d refresh notifications, want 2 (one, then one for the burst): %+v", refreshes, td.display.Notifications())
	}

	td.waitMenu(t, item, "Sign in again")
	td.watcher.Click(t, item, "Sign in again") // a's
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	visits := 0
	for visits < 4 { // three adds, then the sign-in again
		v, err := td.browser.Wait(ctx)
		if err != nil {
			t.Fatalf("browser: %v", err)
		}
		if v.Err != nil || v.Status != 200 {
			t.Fatalf("browser flow %d: status %d, %v", visits+1, v.Status, v.Err)
		}
		visits++
	}
	td.display.WaitNotification(t, "Signed in to a", 30*time.Second)

	// Start at login, from the menu: the XDG entry appears, naming this program, and goes again.
	entry := filepath.Join(td.home, ".config", "autostart", "authkeeper.desktop")
	td.watcher.Click(t, item, "Start at login")
	waitFile(t, entry, true)
	if data, _ := os.ReadFile(entry); !strings.Contains(string(data), `Exec="`+td.bin+`"`) {
		t.Errorf("autostart entry does not start %s:\n%s", td.bin, data)
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		it, _ := testbed.Find(td.watcher.Menu(t, item), "Start at login")
		if it.Checked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Start at login still unchecked 15s after turning it on: %+v", it)
		}
		time.Sleep(100 * time.Millisecond) // polling another process's menu
	}
	td.watcher.Click(t, item, "Start at login")
	waitFile(t, entry, false)

	// The AS forgets every client and grant: b's next refresh fails for good, and the tray says so,
	// once, and shows it in the menu.
	td.as.Restart(t)
	for range 2 {
		refresh := exec.Command(td.bin, "refresh", "b")
		refresh.Env = td.env
		_ = refresh.Run() // fails: b needs a sign-in now
	}
	td.display.WaitNotification(t, "b needs you to sign in again", 30*time.Second)
	td.waitMenu(t, item, "b — needs sign-in")

	second := exec.Command(td.bin)
	second.Env = td.env
	if out, err := second.CombinedOutput(); err != nil || !strings.Contains(string(out), "showed its status window") {
		t.Fatalf("second launch: %v\n%s", err, out)
	}
	td.waitWindow(t, "authkeeper — Status")
	td.waitPainted(t, "authkeeper — Status")
	td.display.Screenshot(t, filepath.Join(testbed.ArtifactDir(t), "tray-desktop.png"))

	td.watcher.Click(t, item, "Quit")
	select {
	case <-p.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("still running 15s after Quit:\n%s", p.Output())
	}
	if err := p.ExitErr(); err != nil {
		t.Errorf("exit after Quit: %v\n%s", err, p.Output())
	}
	if _, err := os.Stat(filepath.Join(td.rt, "authkeeper", "control.sock")); !os.IsNotExist(err) {
		t.Errorf("control socket left behind after Quit: %v", err)
	}
	prompts := 0
	for _, n := range td.display.Notifications() {
		if strings.Contains(n.Body, "eyJ") || strings.Contains(n.Summary, "eyJ") {
			t.Errorf("a notification carries a JWT: %s", n)
		}
		if n.Summary == "b needs you to sign in again" {
			prompts++
		}
	}
	if prompts != 1 {
		t.Errorf("%d \"b needs you to sign in again\" notifications, want exactly 1", prompts)
	}
}

// waitFile waits until path exists (or, with exists false, is gone): the app writes it in another
// process.
func waitFile(t *testing.T, path string, exists bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := os.Stat(path)
		if (err == nil) == exists {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: exists=%v after 15s, want %v (%v)", path, err == nil, exists, err)
		}
		time.Sleep(50 * time.Millisecond) // polling another process's files
	}
}

// waitPainted waits until the window titled title is mapped and something is drawn in it (fyne paints
// on its next frame after the window appears), so that a screenshot shows it.
func (td *trayDesktop) waitPainted(t *testing.T, title string) {
	t.Helper()
	testbed.Need(t, "xwininfo")
	shot := filepath.Join(t.TempDir(), "probe.png")
	deadline := time.Now().Add(15 * time.Second)
	for {
		cmd := exec.Command("xwininfo", "-name", title)
		cmd.Env = append(os.Environ(), "DISPLAY="+td.display.Name)
		out, err := cmd.CombinedOutput()
		geo := map[string]int{}
		for _, k := range []string{"Absolute upper-left X", "Absolute upper-left Y", "Width", "Height"} {
			if m := regexp.MustCompile(`(?m)^\s*` + k + `:\s+(-?\d+)`).FindSubmatch(out); m != nil {
				geo[k], _ = strconv.Atoi(string(m[1]))
			}
		}
		if err == nil && strings.Contains(string(out), "IsViewable") && geo["Width"] > 0 {
			td.display.Screenshot(t, shot)
			if painted(t, shot, image.Rect(geo["Absolute upper-left X"], geo["Absolute upper-left Y"],
				geo["Absolute upper-left X"]+geo["Width"], geo["Absolute upper-left Y"]+geo["Height"])) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("window %q not painted within 15s:\n%s", title, out)
		}
		time.Sleep(100 * time.Millisecond) // polling the X server
	}
}

// painted reports whether the screenshot at path has a pixel other than black inside r.
func painted(t *testing.T, path string, r image.Rectangle) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y += 4 {
		for x := r.Min.X; x < r.Max.X; x += 4 {
			if cr, cg, cb, _ := img.At(x, y).RGBA(); cr|cg|cb != 0 {
				return true
			}
		}
	}
	return false
}

// topWindows counts the X server's top-level windows.
func (td *trayDesktop) topWindows(t *testing.T) int {
	t.Helper()
	testbed.Need(t, "xwininfo")
	cmd := exec.Command("xwininfo", "-root", "-children")
	cmd.Env = append(os.Environ(), "DISPLAY="+td.display.Name)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("xwininfo: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`(?m)^\s*(\d+) child(?:ren)?[:.]`).FindSubmatch(out)
	if m == nil {
		return 0 // "Root window ... has no children."
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// waitWindow waits until the X server has a window titled title (xwininfo lists every window).
func (td *trayDesktop) waitWindow(t *testing.T, title string) {
	t.Helper()
	testbed.Need(t, "xwininfo")
	deadline := time.Now().Add(15 * time.Second)
	for {
		cmd := exec.Command("xwininfo", "-root", "-tree")
		cmd.Env = append(os.Environ(), "DISPLAY="+td.display.Name)
		out, err := cmd.CombinedOutput()
		if err == nil && strings.Contains(string(out), `"`+title+`"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no window %q on the display within 15s; windows:\n%s", title, out)
		}
		time.Sleep(100 * time.Millisecond) // polling the X server
	}
}

// TestIdleTrayQuitsCleanly: a tray that never opened a window (fyne's loop never started) ends cleanly
// both from its menu's Quit and from SIGTERM, removing its control socket each time. It starts under
// LANG=C.UTF-8 (the default of Debian containers), then LANG=C, and says nothing about the locale.
func TestIdleTrayQuitsCleanly(t *testing.T) {
	td := newTrayDesktop(t)
	for _, how := range []string{"menu", "SIGTERM"} {
		n := td.watcher.Registered()
		cmd := exec.Command(td.bin)
		cmd.Env = append(append([]string(nil), td.env...), map[string]string{"menu": "LANG=C.UTF-8", "SIGTERM": "LANG=C"}[how])
		p := testbed.StartProcess(t, "authkeeper ("+how+")", cmd)
		p.WaitLine(t, "authkeeper ", 30*time.Second)
		item := td.watcher.WaitNewItem(t, n, 30*time.Second)
		td.waitMenu(t, item, "Quit")
		if how == "menu" {
			td.watcher.Click(t, item, "Quit")
		} else if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.Done():
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: still running 15s after Quit:\n%s", how, p.Output())
		}
		if err := p.ExitErr(); err != nil {
			t.Errorf("%s: exit: %v\n%s", how, err, p.Output())
		}
		if _, err := os.Stat(filepath.Join(td.rt, "authkeeper", "control.sock")); !os.IsNotExist(err) {
			t.Errorf("%s: control socket left behind: %v", how, err)
		}
		if strings.Contains(p.Output(), "locale") {
			t.Errorf("%s: the tray's output speaks of the locale:\n%s", how, p.Output())
		}
	}
}

// TestTrayFirstRunOpensTheAddWindowOnce: the first start of a fresh install on a desktop opens the Add
// server window with its welcome, next to the menu's "Add your first server…"; after Quit, the second
// start opens none (fyne's loop does not even start).
func TestTrayFirstRunOpensTheAddWindowOnce(t *testing.T) {
	td := newTrayDesktop(t)
	if err := os.Remove(filepath.Join(td.home, ".config", "authkeeper", "config.json")); err != nil {
		t.Fatal(err) // a fresh install
	}
	const welcome = "Welcome to authkeeper: add your first MCP server"
	for _, start := range []string{"first", "second"} {
		before := td.topWindows(t)
		n := td.watcher.Registered()
		cmd := exec.Command(td.bin)
		cmd.Env = td.env
		p := testbed.StartProcess(t, "authkeeper ("+start+" start)", cmd)
		p.WaitLine(t, "authkeeper ", 30*time.Second)
		item := td.watcher.WaitNewItem(t, n, 30*time.Second)
		td.waitMenu(t, item, "Add your first server…")
		if start == "first" {
			td.waitWindow(t, welcome)
			td.waitPainted(t, welcome)
		} else if after := td.topWindows(t); after != before {
			t.Errorf("second start: the X server's top-level windows went from %d to %d", before, after)
		}
		td.watcher.Click(t, item, "Quit")
		select {
		case <-p.Done():
		case <-time.After(15 * time.Second):
			t.Fatalf("%s start: still running 15s after Quit:\n%s", start, p.Output())
		}
	}
}
