package bridge

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Answers that come as server-sent events: relayed event by event, resumed with Last-Event-ID when the
// stream breaks before the answer.

// maxResumes bounds the attempts to resume an interrupted answer stream without progress, as the Go
// SDK's client does.
const maxResumes = 5

// stream relays the events of an SSE answer until every call of msg has its answer. A stream that ends
// early is resumed with Last-Event-ID when the server gave event ids; otherwise the calls still owed
// are answered with an error.
func (b *Bridge) stream(ctx context.Context, msg *message, resp *http.Response) {
	owed := make(map[string]bool, len(msg.calls))
	for _, id := range msg.calls {
		owed[id] = true
	}
	lastID, delay, noProgress := "", time.Second, 0
	for {
		progress, err := b.events(resp, owed, &lastID, &delay)
		resp.Body.Close()
		if len(owed) == 0 || ctx.Err() != nil {
			return
		}
		if err != nil {
			b.failed(ctx, &message{calls: keys(owed)}, mayHaveRun, err)
			return
		}
		if lastID == "" {
			b.failed(ctx, &message{calls: keys(owed)}, mayHaveRun, errors.New("the server ended the stream before it answered"))
			return
		}
		if progress {
			noProgress = 0
		} else if noProgress++; noProgress > maxResumes {
			b.failed(ctx, &message{calls: keys(owed)}, mayHaveRun, fmt.Errorf("the answer stream broke %d times without progress", noProgress))
			return
		}
		if resp = b.resume(ctx, lastID, delay); resp == nil {
			b.failed(ctx, &message{calls: keys(owed)}, mayHaveRun, errors.New("the answer stream broke and could not be resumed"))
			return
		}
	}
}

// events reads resp's events, relaying each message and crossing answered calls off owed. It returns
// once owed is empty (after letting the stream end, so the connection is reused), or when the stream
// ends. err is set only for a message that cannot be relayed.
func (b *Bridge) events(resp *http.Response, owed map[string]bool, lastID *string, delay *time.Duration) (progress bool, err error) {
	r := eventReaders.Get().(*bufio.Reader)
	r.Reset(resp.Body)
	defer func() {
		r.Reset(nil)
		eventReaders.Put(r)
	}()
	for {
		ev, rerr := readEvent(r)
		if rerr != nil {
			// The stream ended, within an event or after the last one: an event the stream did not
			// finish is dropped (WHATWG), and its id is not one to resume from.
			return progress, nil
		}
		if ev.hasID && ev.id != *lastID {
			*lastID, progress = ev.id, true
		}
		if ev.retry > 0 {
			*delay = ev.retry
		}
		if len(ev.data) > 0 && (ev.name == "" || ev.name == "message") {
			key, err := b.deliver(ev.data)
			if err != nil {
				return progress, err
			}
			if owed[key] {
				delete(owed, key)
			}
			if len(owed) == 0 || (key == "" && isBatchAnswer(ev.data)) {
				clear(owed)
				drain(resp.Body)
				return true, nil
			}
		}
	}
}

// eventReaders are the buffers answer streams are read through: one per call in flight.
var eventReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

func isBatchAnswer(data []byte) bool {
	trimmed := bytes.TrimLeft(data, " \t")
	return len(trimmed) > 0 && trimmed[0] == '['
}

// drain reads what is left of an answered stream (the server ends it right after the answer), so that
// the connection can be reused; a stream still open after a second is closed instead.
func drain(body io.ReadCloser) {
	t := time.AfterFunc(time.Second, func() { body.Close() })
	defer t.Stop()
	io.Copy(io.Discard, io.LimitReader(body, 1<<20))
}

// resume asks for the rest of an interrupted stream (GET with Last-Event-ID) after delay.
func (b *Bridge) resume(ctx context.Context, lastID string, delay time.Duration) *http.Response {
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(delay):
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.endpoint, nil)
	if err != nil {
		return nil
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Last-Event-ID", lastID)
	b.mu.Lock()
	if b.session != "" {
		req.Header.Set("Mcp-Session-Id", b.session)
	}
	b.mu.Unlock()
	resp, err := b.rt.RoundTrip(req)
	if err != nil {
		b.log("could not resume an answer stream: %v", err)
		return nil
	}
	ct := mediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		resp.Body.Close()
		b.log("could not resume an answer stream: the proxy answered %d", resp.StatusCode)
		return nil
	}
	return resp
}

// event is one server-sent event.
type event struct {
	name  string
	data  []byte
	id    string
	hasID bool
	retry time.Duration
}

// readEvent reads the next event (WHATWG server-sent events: fields up to a blank line, data lines
// joined with newlines, comments skipped). At the end of the stream it returns the event read so far
// with the error.
func readEvent(r *bufio.Reader) (event, error) {
	var ev event
	dataLines := 0
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long := bytes.Clone(line)
			for errors.Is(err, bufio.ErrBufferFull) && len(long) <= maxLine {
				line, err = r.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if err != nil {
				return ev, err
			}
			if dataLines > 0 || ev.hasID || ev.retry > 0 {
				return ev, nil
			}
			ev, dataLines = event{}, 0 // a block with no data still ends its event type
			continue
		}
		if line[0] != ':' {
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				ev.name = string(value)
			case "data":
				if dataLines > 0 {
					ev.data = append(ev.data, '\n')
				}
				ev.data = append(ev.data, value...)
				dataLines++
			case "id":
				ev.id, ev.hasID = string(value), true
			case "retry":
				if ms, perr := strconv.Atoi(string(value)); perr == nil && ms >= 0 {
					ev.retry = time.Duration(ms) * time.Millisecond
				}
			}
		}
		if err != nil {
			return ev, err
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
