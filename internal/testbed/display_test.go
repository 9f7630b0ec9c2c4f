package testbed

import (
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestDisplayRecordsNotificationsAndTakesScreenshots pins the display fixture: a real notification
// client (notify-send) reaches dunst over the private bus and the monitor records it; a screenshot of
// the Xvfb screen is a PNG of the configured size.
func TestDisplayRecordsNotificationsAndTakesScreenshots(t *testing.T) {
	Need(t, "notify-send")
	d := NewDisplay(t)
	if got := os.Getenv("DISPLAY"); got != d.Name {
		t.Fatalf("DISPLAY = %q, want %q", got, d.Name)
	}
	if n := len(d.Notifications()); n != 0 {
		t.Fatalf("fresh display already has %d notifications", n)
	}

	cmd := exec.Command("notify-send", "-a", "bench", "Refreshed auth for demo", "the body")
	cmd.Env = append(os.Environ(), d.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("notify-send: %v\n%s", err, out)
	}
	n := d.WaitNotification(t, "Refreshed auth for demo", 10*time.Second)
	if n.App != "bench" || n.Body != "the body" {
		t.Errorf("notification = %+v", n)
	}

	path := filepath.Join(t.TempDir(), "screen.png")
	d.Screenshot(t, path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if cfg.Width != 1280 || cfg.Height != 800 {
		t.Errorf("screenshot is %dx%d, want 1280x800", cfg.Width, cfg.Height)
	}
}
