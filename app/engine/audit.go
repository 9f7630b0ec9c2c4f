package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
)

// AuditLog appends events as JSON lines to a file in the state directory and rotates it by size,
// keeping a few old files. Events carry no token material by construction. Safe for concurrent use.
type AuditLog struct {
	path     string
	maxBytes int64
	keep     int

	mu   sync.Mutex
	f    *os.File
	size int64
}

// AuditConfig configures an AuditLog.
type AuditConfig struct {
	Dir      string // required: the state directory
	MaxBytes int64  // rotate when the file would exceed this; default 5 MiB
	Keep     int    // rotated files kept (audit.jsonl.1 … .N); default 3
}

// OpenAuditLog opens Dir/audit.jsonl for appending, creating it private to the user (mode 0600; on
// Windows a DACL that grants the user alone, see keychain.OpenAppendPrivate): the log names servers
// and when their grants were used, which is no business of other local users.
func OpenAuditLog(cfg AuditConfig) (*AuditLog, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("audit log: no directory")
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 5 << 20
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 3
	}
	a := &AuditLog{path: filepath.Join(cfg.Dir, "audit.jsonl"), maxBytes: cfg.MaxBytes, keep: cfg.Keep}
	if err := a.open(); err != nil {
		return nil, err
	}
	return a, nil
}

// Path is the current log file.
func (a *AuditLog) Path() string { return a.path }

func (a *AuditLog) open() error {
	f, err := keychain.OpenAppendPrivate(a.path)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit log: %w", err)
	}
	a.f, a.size = f, fi.Size()
	return nil
}

// Write appends e as one line, rotating first if the line would push the file past MaxBytes.
func (a *AuditLog) Write(e Event) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit log: encode: %w", err)
	}
	line = append(line, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return fmt.Errorf("audit log: closed")
	}
	if a.size > 0 && a.size+int64(len(line)) > a.maxBytes {
		if err := a.rotate(); err != nil {
			return err
		}
	}
	n, err := a.f.Write(line)
	a.size += int64(n)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

// rotate shifts audit.jsonl.N-1 → .N … audit.jsonl → .1 and starts a new file. A rename keeps a
// file's mode and DACL, so the rotated files stay as private as they were made. Whatever fails, the
// log is reopened, so one failed rotation never stops the audit for good. Caller holds mu.
func (a *AuditLog) rotate() error {
	errs := []error{a.f.Close()}
	a.f = nil
	for i := a.keep; i >= 1; i-- {
		from := a.path
		if i > 1 {
			from = a.path + "." + strconv.Itoa(i-1)
		}
		if err := os.Rename(from, a.path+"."+strconv.Itoa(i)); err != nil && !os.IsNotExist(err) {
			errs = append(errs, fmt.Errorf("audit log: rotate: %w", err))
			break
		}
	}
	errs = append(errs, a.open())
	return errors.Join(errs...)
}

// Close closes the file.
func (a *AuditLog) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}

// announcedTail is how much of the end of the audit log announced reads: the announcement it looks for
// is recent (since a refresh start), and the log may be megabytes long.
const announcedTail = 256 << 10

// announced reports whether the log already holds, since the time given, the announcement that
// server's refresh was interrupted (needs_sign_in at load): written by an earlier process of this
// installation — a command's temporary engine that loaded the same record before the app or serve
// took over — so a restart does not announce the same episode again. A log that cannot be read
// reports false: announcing twice is better than never.
func (a *AuditLog) announced(server string, since time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	f, err := os.Open(a.path)
	if err != nil {
		return false
	}
	defer f.Close() // read-only
	st, err := f.Stat()
	if err != nil {
		return false
	}
	off := max(st.Size()-announcedTail, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return false
	}
	for _, line := range bytes.Split(buf, []byte("\n")) {
		var e Event
		if json.Unmarshal(line, &e) != nil {
			continue // the first, partial line of the tail, or a torn write
		}
		if e.Kind == EventNeedsSignIn && e.Server == server && e.Outcome == Outcome(CauseRefreshInterrupted) && !e.Time.Before(since) {
			return true
		}
	}
	return false
}
