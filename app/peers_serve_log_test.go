//go:build unix

package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/internal/testbed"
)

// logfmt parses one logfmt line as slog's TextHandler writes it (key=value, values quoted with Go's
// quoting when needed) and fails the test on anything else.
func logfmt(t *testing.T, line string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for rest := line; rest != ""; {
		key, after, ok := strings.Cut(rest, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \"") {
			t.Fatalf("not logfmt at %q in line %q", rest, line)
		}
		var val string
		if strings.HasPrefix(after, `"`) {
			q, err := strconv.QuotedPrefix(after)
			if err != nil {
				t.Fatalf("bad quoted value in line %q: %v", line, err)
			}
			val, _ = strconv.Unquote(q)
			after = after[len(q):]
		} else {
			val, after, _ = strings.Cut(after, " ")
			after = " " + after
		}
		if _, dup := out[key]; dup {
			t.Fatalf("key %s twice in line %q", key, line)
		}
		out[key] = val
		rest = strings.TrimPrefix(after, " ")
	}
	return out
}

// logLines parses every line of a log.
func logLines(t *testing.T, log string) []map[string]string {
	t.Helper()
	var out []map[string]string
	for _, l := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		if l != "" {
			out = append(out, logfmt(t, l))
		}
	}
	return out
}

// waitLog waits until the log has a line with every field of want and returns it.
func waitLog(t *testing.T, log *testbed.SyncBuffer, want map[string]string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
	next:
		for _, l := range logLines(t, log.String()) {
			for k, v := range want {
				if l[k] != v {
					continue next
				}
			}
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %v in:\n%s", want, log)
		}
		time.Sleep(20 * time.Millisecond) // the log is written by serve's own goroutine
	}
}

// TestServeLogsOneParsableLinePerEventWithoutTokens runs `serve` on an engine signed in to the real AS,
// started while a command (as a bridge does) owns the credentials: every line of its stderr is
// logfmt — that it took over, where every server stands as it starts, then one line per event — a
// refresh (trigger, expiry and the next planned refresh), and after the AS revoked the grant the
// needs-sign-in with the AS's reason — and no token or key anywhere.
func TestServeLogsOneParsableLinePerEventWithoutTokens(t *testing.T) {
	b := newBench(t, benchOptions{Home: true})
	secrets := &tokenSet{}
	secrets.addFromKeychain(t)
	secrets.Add(b.eng.ProxyKey())
	b.eng.Close()

	// A temporary owner, as the CLI or a bridge starts when nothing runs; serve takes over from it.
	ctx, cancel := context.WithCancel(context.Background())
	_, stopTemp, err := connect(ctx, env{stdout: io.Discard, stderr: io.Discard, getenv: os.Getenv}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopTemp)

	stdout, stderr := &testbed.SyncBuffer{}, &testbed.SyncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"authkeeper", "serve", "--proxy-addr", "127.0.0.1:0"}, env{stdout: stdout, stderr: stderr, getenv: os.Getenv})
	}()
	t.Cleanup(func() { cancel(); <-done })

	took := waitLog(t, stderr, map[string]string{"event": "took_over"})
	if took["level"] != "info" || !strings.Contains(took["message"], "took over the credentials") {
		t.Errorf("take-over line %v: want level info and what happened", took)
	}
	start := waitLog(t, stderr, map[string]string{"event": "status", "server": "bench"})
	if start["state"] != "fresh" || start["level"] != "info" || start["expires"] == "" || start["next"] == "" {
		t.Errorf("start line %v: want level info, state fresh, expires and next", start)
	}

	if code, _, errOut := runCLI(t, "refresh", "bench"); code != 0 {
		t.Fatalf("refresh: exit %d: %s", code, errOut)
	}
	ref := waitLog(t, stderr, map[string]string{"event": "refreshed", "server": "bench"})
	expires, err1 := time.Parse(time.RFC3339, ref["expires"])
	next, err2 := time.Parse(time.RFC3339, ref["next"])
	at, err3 := time.Parse(time.RFC3339, ref["time"])
	if err1 != nil || err2 != nil || err3 != nil || ref["level"] != "info" || ref["trigger"] != "user" || ref["outcome"] != "ok" ||
		!next.After(at) || next.After(expires) || time.Since(at) > time.Minute {
		t.Errorf("refreshed line %v: want level info, trigger user, outcome ok, its time, expires and a next refresh before expiry", ref)
	}
	secrets.addFromKeychain(t)

	b.as.Revoke(t, proxyRecord(t).RefreshToken)
	if code, _, _ := runCLI(t, "refresh", "bench"); code == 0 {
		t.Fatal("refresh after the AS revoked the grant succeeded")
	}
	need := waitLog(t, stderr, map[string]string{"event": "needs_sign_in", "server": "bench"})
	if need["level"] != "error" || need["trigger"] != "user" || need["message"] == "" {
		t.Errorf("needs-sign-in line %v: want level error, trigger user and the reason", need)
	}

	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exit %d", code)
	}
	done <- 0 // for the cleanup
	// Every line: logLines fails the test on one that is not logfmt.
	lines := logLines(t, stderr.String())
	counts := map[string]int{}
	for _, l := range lines {
		counts[l["event"]+" "+l["server"]]++
	}
	for _, k := range []string{"took_over ", "status bench", "refreshed bench", "needs_sign_in bench"} {
		if counts[k] != 1 {
			t.Errorf("%d lines of %q, want 1:\n%s", counts[k], k, stderr)
		}
	}
	assertNoSecrets(t, "serve's stderr", stderr.String(), secrets.List()...)
	assertNoSecrets(t, "serve's stdout", stdout.String(), secrets.List()...)
	t.Logf("serve's log:\n%s", stderr)
}

// TestServeLogsItsStartWarningAsALogLine: what serve warns of as it starts (here the file store's
// plain-text warning) is a logfmt line of its stderr like the events, level warn, not free text
// before them; the banner stays on stdout.
func TestServeLogsItsStartWarningAsALogLine(t *testing.T) {
	privateHome(t)
	stdout, stderr := &testbed.SyncBuffer{}, &testbed.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"authkeeper", "serve", "--store", "file", "--proxy-addr", "127.0.0.1:0"},
			env{stdout: stdout, stderr: stderr, getenv: os.Getenv})
	}()
	t.Cleanup(func() { cancel(); <-done })
	w := waitLog(t, stderr, map[string]string{"event": "warning"})
	if w["level"] != "warn" || !strings.Contains(w["message"], "unencrypted") {
		t.Errorf("warning line %v: want level warn and the file store's warning", w)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(stdout.String(), "engine running"); {
		if time.Now().After(deadline) {
			t.Fatalf("no banner on stdout:\n%s", stdout)
		}
		time.Sleep(20 * time.Millisecond) // serve prints it after the warning
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exit %d\n%s", code, stderr)
	}
	done <- 0 // for the cleanup
	logLines(t, stderr.String())
	if strings.Contains(stdout.String(), "warning") {
		t.Errorf("the warning is on stdout too:\n%s", stdout)
	}
}

// TestServeLogLeavesTheTimeToTheJournal: a stderr that $JOURNAL_STREAM names (device:inode, as systemd
// sets it) gets no time= — the journal stamps each line — and any other stderr, including one that
// merely inherited the variable, keeps it.
func TestServeLogLeavesTheTimeToTheJournal(t *testing.T) {
	f, err := os.Create(t.TempDir() + "/stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	own := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	for _, tc := range []struct {
		name, stream string
		withTime     bool
	}{
		{"journal", own, false},
		{"inherited", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), true},
		{"none", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "JOURNAL_STREAM" {
					return tc.stream
				}
				return ""
			}
			var out strings.Builder
			newEventLog(nil, &out, !journalStderr(getenv, f)).write(time.Now(), slog.LevelInfo, "status")
			if got := strings.HasPrefix(out.String(), "time="); got != tc.withTime {
				t.Errorf("line %q: time kept = %v, want %v", out.String(), got, tc.withTime)
			}
		})
	}
}
