package engine

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// TestAuditLogAppendsJSONLinesAndRotatesBySize: events land as JSON lines, no file grows past MaxBytes,
// only Keep rotated files are kept, and the current file and the rotated ones are all private to the
// user (assertPrivateFile: mode 0600, on Windows the DACL).
func TestAuditLogAppendsJSONLinesAndRotatesBySize(t *testing.T) {
	dir := testbed.TempDir(t)
	a, err := OpenAuditLog(AuditConfig{Dir: dir, MaxBytes: 400, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 12 {
		e := Event{Time: t0.Add(time.Duration(i) * time.Second), Kind: EventRefreshed, Server: "demo",
			Trigger: "schedule", Outcome: "ok", Scopes: []string{"mcp:read"}, Expiry: t0.Add(time.Hour)}
		if err := a.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	var total int
	for _, name := range []string{"audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"} {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fi.Size() > 400 {
			t.Errorf("%s is %d bytes, over the 400-byte limit", name, fi.Size())
		}
		assertPrivateFile(t, p)
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Errorf("%s: bad line %q: %v", name, sc.Text(), err)
			}
			if e.Server != "demo" || e.Kind != EventRefreshed || e.Expiry.IsZero() {
				t.Errorf("%s: line decoded as %+v", name, e)
			}
			total++
		}
		f.Close()
	}
	if _, err := os.Stat(filepath.Join(dir, "audit.jsonl.3")); !os.IsNotExist(err) {
		t.Errorf("kept more than 2 rotated files")
	}
	if total == 0 || total >= 12 {
		t.Errorf("%d lines across the kept files; want some dropped by rotation but not all", total)
	}
}

func TestHubDropsSubscribersThatFallBehind(t *testing.T) {
	h := NewHub()
	slow, _ := h.Subscribe()
	fast, cancel := h.Subscribe()
	defer cancel()
	for range subscriberBuffer {
		h.Publish(Event{Kind: EventRefreshed})
	}
	for range subscriberBuffer {
		<-fast // the fast subscriber keeps up; the slow one reads nothing yet
	}
	h.Publish(Event{Kind: EventSignedIn}) // one past the slow subscriber's buffer
	if e, ok := <-fast; !ok || e.Kind != EventSignedIn {
		t.Fatalf("fast subscriber got %+v, %v", e, ok)
	}
	n := 0
	for range slow {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("slow subscriber got %d events before its channel closed, want %d", n, subscriberBuffer)
	}
}
