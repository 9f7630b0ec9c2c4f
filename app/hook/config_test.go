package hook

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
	"github.com/google/go-cmp/cmp"
)

func TestNewRefusesABadConfigWithoutEchoingTheURL(t *testing.T) {
	const secret = "T0SECRET"
	for _, tt := range []struct {
		name string
		cfg  Config
		want string // in the error
	}{
		{"nothing to do", Config{}, "neither a command nor a URL"},
		{"plain http to another host", Config{URL: "http://hooks.example/" + secret}, "must be https"},
		{"plain http to a LAN address", Config{URL: "http://192.168.1.9:8080/" + secret}, "must be https"},
		{"ftp", Config{URL: "ftp://hooks.example/" + secret}, "absolute http(s)"},
		{"relative URL", Config{URL: "hooks.example/" + secret}, "absolute http(s)"},
		{"empty program", Config{Command: []string{""}}, "program"},
		{"program not found", Config{Command: []string{"authkeeper-no-such-program"}}, "executable file not found"},
		{"NUL in an argument", Config{Command: []string{"true", "a\x00b"}}, "NUL"},
		{"negative timeout", Config{URL: "https://hooks.example/x", Timeout: -time.Second}, "negative"},
		{"negative degraded_after", Config{URL: "https://hooks.example/x", DegradedAfter: -time.Second}, "negative"},
		{"negative queue", Config{URL: "https://hooks.example/x", QueueSize: -1}, "queue"},
		{"header the hook sets", Config{URL: "https://hooks.example/x", Headers: http.Header{"Content-Type": {"text/plain"}}}, "set by the hook"},
		{"bad header name", Config{URL: "https://hooks.example/x", Headers: http.Header{"X Secret": {"v"}}}, "not valid"},
		{"header value with a newline", Config{URL: "https://hooks.example/x", Headers: http.Header{"X-Secret": {"a\n" + secret}}}, "control character"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(tt.cfg)
			if err == nil {
				h.Close()
				t.Fatalf("New accepted %+v", tt.cfg)
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want ErrConfig saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error repeats a secret: %v", err)
			}
		})
	}
}

func TestNewFillsTheDefaults(t *testing.T) {
	h, err := New(Config{URL: "https://hooks.example/x", Instance: "i"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c := h.cfg
	got := []any{c.Timeout, c.DegradedAfter, c.QueueSize, c.Retries, c.Clock}
	want := []any{10 * time.Second, 10 * time.Minute, 64, 5, engine.SystemClock{}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	host, _ := os.Hostname()
	h2, err := New(Config{URL: "https://hooks.example/x", Retries: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	if h2.cfg.Instance != host || h2.cfg.Retries != 0 {
		t.Errorf("instance %q (want the host name %q), retries %d (want 0)", h2.cfg.Instance, host, h2.cfg.Retries)
	}
}

// allowedFields are the only keys a Document may have. A field added to Document must be added here
// too, after checking that it can never hold token material (a token, a code, a secret, a scope list,
// a URL with a query).
var allowedFields = []string{"event", "server", "time", "message", "instance", "since", "text", "version"}

func TestDocumentHasNoFieldThatCouldHoldTokenMaterial(t *testing.T) {
	var got []string
	for f := range reflect.TypeFor[Document]().Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		got = append(got, name)
	}
	if diff := cmp.Diff(allowedFields, got); diff != "" {
		t.Errorf("Document's fields (-allowed +got):\n%s", diff)
	}
}

func TestDocumentMessageIsBoundedOnARuneBoundary(t *testing.T) {
	long := strings.Repeat("é", maxMessage) // 2 bytes each
	d := newDocument(KindNeedsSignIn, "s", epoch, time.Time{}, long, "i")
	if len(d.Message) > maxMessage || !strings.HasSuffix(d.Message, "…") || !strings.HasPrefix(long, strings.TrimSuffix(d.Message, "…")) {
		t.Errorf("message of %d bytes, ends %q", len(d.Message), d.Message[len(d.Message)-8:])
	}
	if short := newDocument(KindNeedsSignIn, "s", epoch, time.Time{}, "short", "i"); short.Message != "short" {
		t.Errorf("short message changed to %q", short.Message)
	}
}

// writeFile writes a file private to the user (mode 0600; on Windows, the temp dir's owner-only ACL).
func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(testbed.TempDir(t), "headers")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFromSettingsReadsThePrivateHeadersFileAndSendsItsHeaders(t *testing.T) {
	if h, err := FromSettings(nil, "", nil); h != nil || err != nil {
		t.Fatalf("FromSettings(nil) = %v, %v; want no hook", h, err)
	}
	rc := newReceiver(t, status(http.StatusOK))
	path := writeFile(t, "# the webhook's secret\n\nX-Hook-Secret: s3cr3t-value\nAuthorization:  Bearer abc:def \n")
	logs := newLogRecorder()
	h, err := FromSettings(&keychain.EventHook{URL: rc.srv.URL + "/h", HeadersFile: path, DegradedAfter: "90s"}, "box", logs.logf)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.cfg.DegradedAfter != 90*time.Second || h.cfg.Instance != "box" {
		t.Errorf("degraded_after %s, instance %q", h.cfg.DegradedAfter, h.cfg.Instance)
	}
	h.Feed(engine.Event{Kind: engine.EventNeedsSignIn, Server: "github"})
	got := rc.next(t)
	if got.header.Get("X-Hook-Secret") != "s3cr3t-value" || got.header.Get("Authorization") != "Bearer abc:def" {
		t.Errorf("headers %v", got.header)
	}
	logs.waitFor(t, "delivered")
	for _, line := range logs.all() {
		if strings.Contains(line, "s3cr3t") {
			t.Errorf("log line holds the header value: %q", line)
		}
	}
}

func TestFromSettingsRefusesAnUnsafeOrMalformedHeadersFile(t *testing.T) {
	url := "https://hooks.example/x"
	t.Run("not private", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("mode bits say nothing on Windows; keychain tests CheckPrivate's ACL rules")
		}
		path := writeFile(t, "X-Secret: v\n")
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := FromSettings(&keychain.EventHook{URL: url, HeadersFile: path}, "", nil)
		if !errors.Is(err, keychain.ErrNotPrivate) || !errors.Is(err, ErrConfig) {
			t.Errorf("FromSettings = %v, want ErrNotPrivate", err)
		}
	})
	for _, tt := range []struct{ name, content, want string }{
		{"no colon", "X-Secret s3cr3t\n", "line 1 is not"},
		{"no value", "# c\nX-Secret:\n", "line 2 is not"},
		{"no name", ": s3cr3t\n", "line 1 is not"},
		{"empty", "# nothing\n\n", "no header"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromSettings(&keychain.EventHook{URL: url, HeadersFile: writeFile(t, tt.content)}, "", nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("FromSettings = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("the error quotes the file: %v", err)
			}
		})
	}
	if _, err := FromSettings(&keychain.EventHook{URL: url, DegradedAfter: "soon"}, "", nil); !errors.Is(err, ErrConfig) {
		t.Errorf("FromSettings with a bad duration = %v, want ErrConfig", err)
	}
}
