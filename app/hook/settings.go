package hook

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
)

// maxHeadersFile bounds the headers file: a few secrets, not a document.
const maxHeadersFile = 64 << 10

// FromSettings builds the hook the settings describe, or returns nil (and no error) when p is nil: no
// hook. instance names this authkeeper in the documents ("" for the host name); logf receives the
// hook's log lines (nil: discarded). The headers file is read now and must be private to the user.
// Timeout, queue size and retries are the defaults.
func FromSettings(p *keychain.EventHook, instance string, logf func(level slog.Level, format string, args ...any)) (*Hook, error) {
	if p == nil {
		return nil, nil
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cfg := Config{Command: p.Command, URL: p.URL, Instance: instance, Logf: logf}
	if p.DegradedAfter != "" {
		d, err := time.ParseDuration(p.DegradedAfter) // Validate accepted it
		if err != nil {
			return nil, fmt.Errorf("%w: degraded_after: %w", ErrConfig, err)
		}
		cfg.DegradedAfter = d
	}
	if p.HeadersFile != "" {
		h, err := ReadHeaders(p.HeadersFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		cfg.Headers = h
	}
	return New(cfg)
}

// ReadHeaders reads a headers file: one "Name: value" per line; blank lines and lines starting with
// "#" are skipped. The file must be private (keychain.CheckPrivate: the values are secrets), and no
// error quotes a line, for the same reason.
func ReadHeaders(path string) (http.Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("headers file: %w", err)
	}
	defer f.Close() // read-only
	if err := keychain.CheckPrivate(f); err != nil {
		return nil, fmt.Errorf("headers file: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxHeadersFile+1))
	if err != nil {
		return nil, fmt.Errorf("headers file %s: %w", path, err)
	}
	if len(data) > maxHeadersFile {
		return nil, fmt.Errorf("headers file %s: larger than %d bytes", path, maxHeadersFile)
	}
	h := http.Header{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxHeadersFile)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || value == "" {
			return nil, fmt.Errorf("headers file %s: line %d is not \"Name: value\"", path, n)
		}
		h.Add(name, value)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("headers file %s: %w", path, err)
	}
	if len(h) == 0 {
		return nil, errors.New("headers file " + path + ": no header in it")
	}
	return h, nil
}
