package hook

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// Kind is what the hook reports. Code branches on it; the words in Document.Text derive from it.
type Kind string

// The kinds the hook fires on; the first two are the engine's event kinds of the same name.
const (
	KindNeedsSignIn Kind = "needs_sign_in" // the grant is gone: someone must sign in
	KindRevoked     Kind = "revoked"       // the server refused a token authkeeper believed valid
	KindDegraded    Kind = "degraded"      // refreshes have been failing for longer than DegradedAfter
)

// DocumentVersion is Document.Version: it changes only when a field changes meaning or goes away.
const DocumentVersion = 1

// maxMessage bounds Document.Message, in bytes: the engine's messages are a sentence or two, and a
// chat message or a pager summary wants no more.
const maxMessage = 1000

// Document is what the hook delivers, as JSON: the command's stdin, the URL's request body. It has no
// field that could hold token material — no scopes, no expiry, no client id, no URL: only what a
// person on call needs to know who must do what. Text is a ready-made sentence for chat webhooks
// (Slack, Mattermost and Google Chat show a document's "text" and ignore the other fields).
type Document struct {
	Event    Kind   `json:"event"`
	Server   string `json:"server"`
	Time     string `json:"time"` // when it happened (for degraded: when the hook fired), RFC 3339, UTC
	Message  string `json:"message,omitempty"`
	Instance string `json:"instance"`
	Since    string `json:"since,omitempty"` // degraded only: when the episode began, RFC 3339, UTC
	Text     string `json:"text"`
	Version  int    `json:"version"`
}

// newDocument builds a Document; since is zero except for degraded.
func newDocument(kind Kind, server string, at, since time.Time, message, instance string) Document {
	d := Document{
		Event: kind, Server: server, Time: at.UTC().Format(time.RFC3339), Message: truncate(message, maxMessage),
		Instance: instance, Version: DocumentVersion,
	}
	if !since.IsZero() {
		d.Since = since.UTC().Format(time.RFC3339)
	}
	d.Text = d.text()
	return d
}

// text says the document in one sentence.
func (d Document) text() string {
	s := "authkeeper on " + d.Instance + ": " + d.Server
	switch d.Event {
	case KindNeedsSignIn:
		s += " needs someone to sign in again"
	case KindRevoked:
		s += " refused its token; someone must sign in again"
	case KindDegraded:
		s += " has failed to refresh its token since " + d.Since + " (the current token still works until it expires)"
	}
	if d.Message != "" {
		s += ": " + d.Message
	}
	return s
}

func (d Document) encode() ([]byte, error) { return json.Marshal(d) }

// truncate cuts s to at most n bytes on a rune boundary, marking the cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
