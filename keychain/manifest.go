package keychain

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// A record is stored as a manifest item named after the server plus one item per chunk:
//
//	<name>            {"v":1,"cur":{"gen":7,"chunks":3,"sha256":"…"},"prev":{"gen":6,…}}
//	<name>#7.0 … #7.2 base64 of the record's JSON, cut into ChunkSize pieces
//	<name>#6.0 …      the previous generation, kept as the fallback
//
// An update writes generation N+1's chunks, switches the manifest (a single keychain write, atomic in
// every backend), then deletes generation N-1. So the manifest always names complete generations; a
// crash before the switch leaves orphan chunks of N+1 that the next Put overwrites, and a reader that
// finds generation N damaged (or deleted under it by a writer that finished meanwhile) re-reads the
// manifest or falls back to N-1.

const manifestVersion = 1

type manifest struct {
	V    int         `json:"v"`
	Cur  generation  `json:"cur"`
	Prev *generation `json:"prev,omitempty"`
}

// generation identifies one complete copy of a record. Gen equals the record's Revision.
type generation struct {
	Gen    uint64 `json:"gen"`
	Chunks int    `json:"chunks"`
	SHA256 string `json:"sha256"` // hex SHA-256 of the joined chunks; not secret (the input is high-entropy)
}

func chunkKey(name string, gen uint64, i int) string { return fmt.Sprintf("%s#%d.%d", name, gen, i) }

// encodeRecord serialises rec and cuts it into chunks of at most size bytes. Base64 keeps every chunk
// ASCII, so a cut never splits a UTF-8 sequence and no backend re-encodes it.
func encodeRecord(rec Record, size int) ([]string, generation, error) {
	js, err := json.Marshal(rec)
	if err != nil {
		return nil, generation{}, fmt.Errorf("encode record: %w", err)
	}
	payload := base64.StdEncoding.EncodeToString(js)
	var chunks []string
	for len(payload) > size {
		chunks = append(chunks, payload[:size])
		payload = payload[size:]
	}
	chunks = append(chunks, payload)
	return chunks, generation{Gen: rec.Revision, Chunks: len(chunks), SHA256: digest(chunks)}, nil
}

// decodeRecord joins chunks, checks them against g and decodes the record. Errors say what is wrong
// but never quote the payload.
func decodeRecord(chunks []string, g generation) (Record, error) {
	want, err := hex.DecodeString(g.SHA256)
	if err != nil {
		return Record{}, fmt.Errorf("generation %d: bad digest in manifest", g.Gen)
	}
	got, _ := hex.DecodeString(digest(chunks)) // digest returns valid hex
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return Record{}, fmt.Errorf("generation %d: checksum mismatch", g.Gen)
	}
	js, err := base64.StdEncoding.DecodeString(strings.Join(chunks, ""))
	if err != nil {
		return Record{}, fmt.Errorf("generation %d: not base64", g.Gen)
	}
	var rec Record
	if err := json.Unmarshal(js, &rec); err != nil {
		return Record{}, fmt.Errorf("generation %d: not a record", g.Gen)
	}
	if rec.Revision != g.Gen {
		return Record{}, fmt.Errorf("generation %d: holds revision %d", g.Gen, rec.Revision)
	}
	return rec, nil
}

func digest(chunks []string) string {
	h := sha256.New()
	for _, c := range chunks {
		h.Write([]byte(c))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func parseManifest(s string) (manifest, error) {
	var m manifest
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return manifest{}, fmt.Errorf("manifest: %w", err)
	}
	if m.V != manifestVersion || m.Cur.Gen == 0 || m.Cur.Chunks < 1 {
		return manifest{}, fmt.Errorf("manifest: unsupported (v=%d gen=%d chunks=%d)", m.V, m.Cur.Gen, m.Cur.Chunks)
	}
	return m, nil
}

func (m manifest) encode() string {
	js, _ := json.Marshal(m) // a struct of ints and strings always marshals
	return string(js)
}
