//go:build linux

package wine

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/assets"
	"github.com/authkeeper/authkeeper/internal/testbed"
)

// TestTrayIconAndMenuAppearInWinesSystemTray starts the tray exe under Wine on a private Xvfb. With no
// XEmbed tray on the display, Wine's explorer shows the notification icons in a window of its own; the
// test finds that window, waits for the tray's state icon in it, clicks it, and sees the menu open: a new window of
// authkeeper.exe's and a changed picture. The menu's last item, Quit, then ends the app. The pictures
// go to docs/screenshots/wine-tray*.png with AUTHKEEPER_SCREENSHOTS_UPDATE=1, else to the artifacts.
func TestTrayIconAndMenuAppearInWinesSystemTray(t *testing.T) {
	b := newBench(t)
	b.artefact(t, "authkeeper.exe")
	testbed.Need(t, "xdotool", "import")
	d := testbed.NewDisplay(t)
	b.restartWine(t) // a desktop left by a test without a display would take the tray's windows
	appData := t.TempDir()
	// The first run is behind it (else the welcome window opens, and openMenu would take it for the
	// menu): with no server the icon is the hollow "no servers yet" one.
	conf := filepath.Join(appData, "authkeeper", "config.json")
	if err := os.MkdirAll(filepath.Dir(conf), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(`{"servers":[],"prefs":{"store":"file","notifications":true,"first_run_done":true}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tray := testbed.StartProcess(t, "authkeeper.exe (tray)", b.appCommand(t, appData,
		[]string{"DISPLAY=" + d.Name, "AUTHKEEPER_PROXY_ADDR=127.0.0.1:0", "AUTHKEEPER_STORE=file"}))
	if mode := tray.WaitLine(t, "authkeeper ", wineStart); !strings.Contains(mode, "(with tray)") {
		t.Fatalf("the exe started %q, want the engine with its tray; output:\n%s", mode, tray.Output())
	}

	// Wine's tray window belongs to explorer.exe, which Wine starts with the first program of a display.
	var trayWin string
	waitFor(t, wineStart, "Wine's system tray window", func() bool {
		ids := windows(t, d, "--class", "explorer.exe")
		for _, id := range ids {
			if g := geometry(t, d, id); g.Dx() > 0 && g.Dy() > 0 {
				trayWin = id
				return true
			}
		}
		return false
	})
	tg := geometry(t, d, trayWin)
	// Wine shows the window before it draws an icon in it, and fyne first sets the application icon:
	// wait for the tray's own state icon (no servers yet) in the window's first square.
	var icon image.Image
	iconArea := image.Rect(tg.Min.X, tg.Min.Y, tg.Min.X+tg.Dy(), tg.Max.Y)
	shown := ""
	waitFor(t, 30*time.Second, "no-servers icon in Wine's tray window", func() bool {
		icon = screenshot(t, d)
		now := closestIcon(t, icon, iconArea, icon.At(tg.Max.X-2, tg.Min.Y+tg.Dy()/2))
		if now != shown {
			t.Logf("Wine's tray window shows %q", now) // what it showed, should the wait fail
			shown = now
		}
		return shown == "tray-empty"
	})
	// openMenu right-clicks the icon (the window's first), as Windows users open a notification icon's
	// menu, and returns the rectangle of the window that appears: the menu.
	openMenu := func() image.Rectangle {
		t.Helper()
		before := windows(t, d, "--class", "authkeeper.exe")
		xdo(t, d, "mousemove", strconv.Itoa(tg.Min.X+tg.Dy()/2), strconv.Itoa(tg.Min.Y+tg.Dy()/2), "click", "3")
		var menu string
		waitFor(t, 30*time.Second, "tray menu (a new window of authkeeper.exe's)", func() bool {
			for _, id := range windows(t, d, "--class", "authkeeper.exe") {
				if !slices.Contains(before, id) {
					menu = id
					return true
				}
			}
			return false
		})
		return geometry(t, d, menu)
	}
	mg := openMenu()
	menu := screenshot(t, d)
	if n := differentPixels(icon, menu, mg); n < mg.Dx()*mg.Dy()/4 {
		t.Errorf("%d pixels changed where the %v menu opened, want most of them", n, mg.Size())
	}
	// The two pictures show the same part of the screen: the tray window and the menu, with a margin.
	area := tg.Union(mg).Inset(-24).Intersect(icon.Bounds())
	save(t, "wine-tray.png", icon, area)
	save(t, "wine-tray-menu.png", menu, area)

	// fyne builds the tray menu twice at start: when the app sets it, and again, with new item ids, once
	// the tray is ready (its glfw driver's runSystray). A click in a menu opened in between reaches an
	// id that is gone (systray logs "no menu item with ID"), so the test opens the menu again then.
	for attempt := 1; ; attempt++ {
		xdo(t, d, "mousemove", strconv.Itoa(mg.Min.X+mg.Dx()/2), strconv.Itoa(mg.Max.Y-8), "click", "1")
		select {
		case <-tray.Done():
			if err := tray.ExitErr(); err != nil {
				t.Errorf("the tray exited with %v after Quit", err)
			}
			return
		case <-time.After(15 * time.Second):
		}
		if attempt == 3 || !strings.Contains(tray.Output(), "no menu item with ID") {
			t.Fatalf("the tray did not quit from its menu's last item; output:\n%s", tray.Output())
		}
		t.Logf("the click on Quit reached a menu item fyne had replaced; opening the menu again")
		mg = openMenu()
	}
}

// windows lists the visible windows xdotool finds with args (e.g. --class NAME), oldest first.
func windows(t *testing.T, d *testbed.Display, args ...string) []string {
	t.Helper()
	cmd := exec.Command("xdotool", append([]string{"search", "--onlyvisible"}, args...)...)
	cmd.Env = append(os.Environ(), "DISPLAY="+d.Name)
	out, _ := cmd.Output() // exit 1: none found
	return strings.Fields(string(out))
}

// geometry is a window's rectangle on the screen.
func geometry(t *testing.T, d *testbed.Display, id string) image.Rectangle {
	t.Helper()
	out := xdo(t, d, "getwindowgeometry", "--shell", id)
	v := map[string]int{}
	for _, l := range strings.Split(out, "\n") {
		if k, val, ok := strings.Cut(l, "="); ok {
			v[k], _ = strconv.Atoi(val)
		}
	}
	return image.Rect(v["X"], v["Y"], v["X"]+v["WIDTH"], v["Y"]+v["HEIGHT"])
}

// xdo runs xdotool on the display and returns its output.
func xdo(t *testing.T, d *testbed.Display, args ...string) string {
	t.Helper()
	cmd := exec.Command("xdotool", args...)
	cmd.Env = append(os.Environ(), "DISPLAY="+d.Name)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("xdotool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screenshot returns a picture of the whole display.
func screenshot(t *testing.T, d *testbed.Display) image.Image {
	t.Helper()
	path := filepath.Join(t.TempDir(), "screen.png")
	d.Screenshot(t, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return img
}

// save writes the area of img to name: under docs/screenshots with AUTHKEEPER_SCREENSHOTS_UPDATE=1,
// else in the artifact directory.
func save(t *testing.T, name string, img image.Image, area image.Rectangle) {
	t.Helper()
	dir := testbed.ArtifactDir(t)
	if os.Getenv("AUTHKEEPER_SCREENSHOTS_UPDATE") == "1" {
		dir = filepath.Join("..", "..", "docs", "screenshots")
	}
	crop := image.NewRGBA(image.Rectangle{Max: area.Size()})
	draw.Draw(crop, crop.Bounds(), img, area.Min, draw.Src)
	var buf bytes.Buffer
	if err := png.Encode(&buf, crop); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// closestIcon names the embedded icon whose mean colour (over its opaque pixels) is nearest to the mean
// colour of the pixels of area that differ from blank, the background: "" when fewer than a quarter
// of them do (nothing drawn yet).
func closestIcon(t *testing.T, screen image.Image, area image.Rectangle, blank color.Color) string {
	t.Helper()
	drawn := func(c color.Color) bool { return c != blank }
	got, n := meanColor(screen, area, drawn)
	if n < area.Dx()*area.Dy()/4 {
		return ""
	}
	best, bestDist := "", math.MaxFloat64
	for name, data := range map[string][]byte{"app": assets.Icon, "tray-fresh": assets.TrayFresh, "tray-empty": assets.TrayEmpty, "tray-busy": assets.TrayBusy,
		"tray-attention": assets.TrayAttention, "tray-error": assets.TrayError} {
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("icon %s: %v", name, err)
		}
		want, _ := meanColor(img, img.Bounds(), func(c color.Color) bool { _, _, _, a := c.RGBA(); return a > 0xc000 })
		if d := math.Hypot(math.Hypot(got[0]-want[0], got[1]-want[1]), got[2]-want[2]); d < bestDist {
			best, bestDist = name, d
		}
	}
	return best
}

// meanColor is the mean red, green and blue (0-255) of the pixels of area that keep says to count, and
// how many there were.
func meanColor(img image.Image, area image.Rectangle, keep func(color.Color) bool) ([3]float64, int) {
	var sum [3]float64
	n := 0
	for y := area.Min.Y; y < area.Max.Y; y++ {
		for x := area.Min.X; x < area.Max.X; x++ {
			c := img.At(x, y)
			if !keep(c) {
				continue
			}
			r, g, b, _ := color.NRGBAModel.Convert(c).RGBA()
			sum[0], sum[1], sum[2] = sum[0]+float64(r>>8), sum[1]+float64(g>>8), sum[2]+float64(b>>8)
			n++
		}
	}
	if n > 0 {
		for i := range sum {
			sum[i] /= float64(n)
		}
	}
	return sum, n
}

// differentPixels counts the pixels of area that differ between two pictures of the same screen.
func differentPixels(a, b image.Image, area image.Rectangle) int {
	n := 0
	for y := area.Min.Y; y < area.Max.Y; y++ {
		for x := area.Min.X; x < area.Max.X; x++ {
			if a.At(x, y) != b.At(x, y) {
				n++
			}
		}
	}
	return n
}

// waitFor polls cond until it holds or timeout passes (another process's windows: nothing to wait on).
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
	}
}
