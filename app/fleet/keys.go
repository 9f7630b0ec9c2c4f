package fleet

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/authkeeper/authkeeper/keychain"
)

// KeyEnv is the environment variable LoadKeys reads the fleet keys from when no key file is given.
const KeyEnv = "AUTHKEEPER_FLEET_KEY"

var (
	// ErrUnknownKey means a sealed value names a key id this instance was not given: add the key (the
	// old one, after a rotation) to the key file.
	ErrUnknownKey = errors.New("sealed with a fleet key this instance does not have")
	// ErrTampered means a sealed value does not open with its key: it was changed, cut, or moved from
	// another place (the additional data differs).
	ErrTampered = errors.New("sealed value was altered or does not belong here")
	// ErrNoKey means neither a key file nor AUTHKEEPER_FLEET_KEY was given.
	ErrNoKey = errors.New("no fleet key (give a key file or set " + KeyEnv + ")")
)

// Keys holds the fleet keys: the current one seals, every one opens (rotation). The key bytes live only
// inside the AES-GCM ciphers; no method returns or prints them. Safe for concurrent use.
type Keys struct {
	ids   []string // ids[0] is the current key
	aeads map[string]cipher.AEAD
}

const (
	keyLen       = 32 // AES-256
	maxKeyIDLen  = 32
	sealVersion  = 1
	maxKeySource = 64 << 10 // a key file is a few lines
)

// LoadKeys reads the fleet keys from the file at path when path is non-empty, else from envValue
// (the value of AUTHKEEPER_FLEET_KEY). Either holds one key per line (the environment value may also
// separate them with commas) as "ID:BASE64": ID is 1 to 32 of [A-Za-z0-9._-], BASE64 decodes to 32
// bytes. Blank lines and lines starting with '#' are skipped. The first key is the current one; the
// others only open what they sealed. The file must be private (keychain.CheckPrivate). Errors name the
// line, never its content.
func LoadKeys(path, envValue string) (*Keys, error) {
	var src []byte
	var where string
	switch {
	case path != "":
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("fleet key file: %w", err)
		}
		defer f.Close()
		if err := keychain.CheckPrivate(f); err != nil {
			return nil, fmt.Errorf("fleet key file: %w", err)
		}
		if src, err = io.ReadAll(io.LimitReader(f, maxKeySource+1)); err != nil {
			return nil, fmt.Errorf("fleet key file %s: %w", path, err)
		}
		if len(src) > maxKeySource {
			return nil, fmt.Errorf("fleet key file %s: larger than %d bytes", path, maxKeySource)
		}
		where = path
	case envValue != "":
		src = []byte(strings.ReplaceAll(envValue, ",", "\n"))
		where = KeyEnv
	default:
		return nil, ErrNoKey
	}
	return parseKeys(src, where)
}

// parseKeys parses the lines of src; where names the source in errors.
func parseKeys(src []byte, where string) (*Keys, error) {
	k := &Keys{aeads: map[string]cipher.AEAD{}}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, b64, ok := strings.Cut(line, ":")
		if !ok || validKeyID(id) != nil {
			return nil, fmt.Errorf("%s: key %d: want ID:BASE64 with an ID of 1 to %d of [A-Za-z0-9._-]", where, n, maxKeyIDLen)
		}
		raw, err := decodeKey(b64)
		if err != nil {
			return nil, fmt.Errorf("%s: key %q: %w", where, id, err)
		}
		if _, dup := k.aeads[id]; dup {
			return nil, fmt.Errorf("%s: key id %q appears twice", where, id)
		}
		aead, err := newAEAD(raw)
		clear(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: key %q: %w", where, id, err)
		}
		k.ids = append(k.ids, id)
		k.aeads[id] = aead
	}
	if len(k.ids) == 0 {
		return nil, fmt.Errorf("%s: %w", where, ErrNoKey)
	}
	return k, nil
}

// decodeKey decodes a key's base64 (standard or URL alphabet, padded or not) and checks its length.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	raw, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		raw, err = base64.RawURLEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, errors.New("not base64")
	}
	if len(raw) != keyLen {
		return nil, fmt.Errorf("decodes to %d bytes, want %d", len(raw), keyLen)
	}
	return raw, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// validKeyID checks a key id: 1 to 32 of [A-Za-z0-9._-].
func validKeyID(id string) error {
	if id == "" || len(id) > maxKeyIDLen {
		return fmt.Errorf("key id must be 1 to %d characters", maxKeyIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("key id %q: only [A-Za-z0-9._-] allowed", id)
		}
	}
	return nil
}

// NewKeyLine returns a fresh key line "ID:BASE64" (32 bytes from crypto/rand), for `authkeeper fleet
// keygen`.
func NewKeyLine(id string) (string, error) {
	if err := validKeyID(id); err != nil {
		return "", err
	}
	raw := make([]byte, keyLen)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("fleet key: %w", err)
	}
	line := id + ":" + base64.StdEncoding.EncodeToString(raw)
	clear(raw)
	return line, nil
}

// CurrentID is the id of the key that seals.
func (k *Keys) CurrentID() string { return k.ids[0] }

// String names the keys by id only.
func (k *Keys) String() string {
	return fmt.Sprintf("fleet.Keys{current: %s, ids: %s}", k.ids[0], strings.Join(k.ids, ","))
}

// GoString is String, so %#v prints no key either.
func (k *Keys) GoString() string { return k.String() }

// Seal encrypts plaintext with the current key, bound to aad (which must be given again to Open). The
// result is: version byte (1), key id length, key id, 12-byte nonce, ciphertext with its tag; the
// version and key id are authenticated too.
func (k *Keys) Seal(aad, plaintext []byte) ([]byte, error) {
	id := k.ids[0]
	aead := k.aeads[id]
	head := append([]byte{sealVersion, byte(len(id))}, id...)
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("fleet seal: %w", err)
	}
	out := append(head, nonce...)
	return aead.Seal(out, nonce, plaintext, additional(head, aad)), nil
}

// Open reverses Seal with the key the sealed value names. Its errors wrap ErrUnknownKey (a key this
// instance lacks) or ErrTampered (anything else that does not open).
func (k *Keys) Open(aad, sealed []byte) ([]byte, error) {
	if len(sealed) < 2 || sealed[0] != sealVersion || len(sealed) < 2+int(sealed[1]) {
		return nil, ErrTampered
	}
	head := sealed[:2+int(sealed[1])]
	id := string(head[2:])
	aead, ok := k.aeads[id]
	if !ok {
		if validKeyID(id) != nil {
			return nil, ErrTampered
		}
		return nil, fmt.Errorf("key id %q: %w", id, ErrUnknownKey)
	}
	rest := sealed[len(head):]
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrTampered
	}
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], additional(head, aad))
	if err != nil {
		return nil, ErrTampered
	}
	return plain, nil
}

// additional is the GCM additional data: the header, then the caller's aad.
func additional(head, aad []byte) []byte {
	return append(append(make([]byte, 0, len(head)+len(aad)), head...), aad...)
}
