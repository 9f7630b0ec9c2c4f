package fleet

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/authkeeper/authkeeper/keychain"
)

// testKeys returns keys made of fresh lines with the given ids (the first is current) and the lines.
func testKeys(t *testing.T, ids ...string) (*Keys, []string) {
	t.Helper()
	var lines []string
	for _, id := range ids {
		l, err := NewKeyLine(id)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	k, err := LoadKeys("", strings.Join(lines, ","))
	if err != nil {
		t.Fatal(err)
	}
	return k, lines
}

func TestSealOpenRoundTripIsBoundToTheAdditionalData(t *testing.T) {
	k, _ := testKeys(t, "k1")
	plain := []byte(`{"access_token":"secret"}`)
	sealed, err := k.Seal([]byte("/p/records/a"), plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("secret")) {
		t.Fatalf("sealed value contains the plaintext")
	}
	got, err := k.Open([]byte("/p/records/a"), sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v; want the plaintext", got, err)
	}
	if _, err := k.Open([]byte("/p/records/b"), sealed); !errors.Is(err, ErrTampered) {
		t.Fatalf("Open under another key name = %v; want ErrTampered", err)
	}
	again, _ := k.Seal([]byte("/p/records/a"), plain)
	if bytes.Equal(again, sealed) {
		t.Fatalf("two seals of the same plaintext are equal: the nonce is not fresh")
	}
}

func TestOpenRefusesEveryAlteredSealedValue(t *testing.T) {
	k, _ := testKeys(t, "k1")
	aad := []byte("/p/records/a")
	sealed, err := k.Seal(aad, []byte("plaintext"))
	if err != nil {
		t.Fatal(err)
	}
	idEnd := 2 + len("k1")
	tests := []struct {
		name  string
		alter func([]byte) []byte
		want  error
	}{
		{"flipped ciphertext byte", func(b []byte) []byte { b[len(b)-20] ^= 1; return b }, ErrTampered},
		{"flipped tag byte", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrTampered},
		{"flipped nonce byte", func(b []byte) []byte { b[idEnd] ^= 1; return b }, ErrTampered},
		{"other version", func(b []byte) []byte { b[0] = 2; return b }, ErrTampered},
		{"key id renamed", func(b []byte) []byte { b[2] = 'x'; return b }, ErrUnknownKey},
		{"truncated", func(b []byte) []byte { return b[:idEnd+5] }, ErrTampered},
		{"empty", func([]byte) []byte { return nil }, ErrTampered},
		{"id length past the end", func(b []byte) []byte { b[1] = 200; return b[:10] }, ErrTampered},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := k.Open(aad, tc.alter(bytes.Clone(sealed)))
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("Open = %q, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestRotationTheNewKeySealsAndTheOldOneStillOpens(t *testing.T) {
	old, oldLines := testKeys(t, "2024")
	sealedOld, _ := old.Seal(nil, []byte("old record"))

	newLine, _ := NewKeyLine("2025")
	rotated, err := LoadKeys("", newLine+"\n"+oldLines[0])
	if err != nil {
		t.Fatal(err)
	}
	if rotated.CurrentID() != "2025" {
		t.Fatalf("CurrentID = %q; want the first key, 2025", rotated.CurrentID())
	}
	if got, err := rotated.Open(nil, sealedOld); err != nil || string(got) != "old record" {
		t.Fatalf("rotated keys open the old record: %q, %v", got, err)
	}
	sealedNew, _ := rotated.Seal(nil, []byte("new record"))
	if _, err := old.Open(nil, sealedNew); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "2025") {
		t.Fatalf("old keys open a record sealed after the rotation: %v; want ErrUnknownKey naming 2025", err)
	}
}

func TestLoadKeysFromAFileThatMustBePrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes say nothing on Windows; keychain's own tests cover its ACL check")
	}
	line, _ := NewKeyLine("k1")
	path := filepath.Join(t.TempDir(), "fleet.key")
	if err := os.WriteFile(path, []byte("# the fleet key\n"+line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKeys(path, "ignored when a file is given")
	if err != nil || k.CurrentID() != "k1" {
		t.Fatalf("LoadKeys(private file) = %v, %v", k, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeys(path, ""); !errors.Is(err, keychain.ErrNotPrivate) {
		t.Fatalf("LoadKeys(0644 file) = %v; want keychain.ErrNotPrivate", err)
	}
	if _, err := LoadKeys("", ""); !errors.Is(err, ErrNoKey) {
		t.Fatalf("LoadKeys with nothing = %v; want ErrNoKey", err)
	}
}

func TestLoadKeysErrorsNeverShowKeyMaterial(t *testing.T) {
	line, _ := NewKeyLine("k1")
	_, b64, _ := strings.Cut(line, ":")
	short := b64[:20]
	tests := []struct{ name, env, secret string }{
		{"no id", b64, b64},
		{"id too long", strings.Repeat("i", 33) + ":" + b64, b64},
		{"bad id character", "a b:" + b64, b64},
		{"not base64", "k1:" + short + "!!", short},
		{"short key", "k1:" + short, short},
		{"duplicate id", line + "," + line, b64},
		{"only comments", "# " + b64, b64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := LoadKeys("", tc.env)
			if err == nil {
				t.Fatalf("LoadKeys accepted it: %v", k)
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("error shows key material: %v", err)
			}
		})
	}
}

func TestKeysPrintOnlyTheirIDs(t *testing.T) {
	k, lines := testKeys(t, "k1", "k0")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, k)
		for _, l := range lines {
			_, b64, _ := strings.Cut(l, ":")
			raw, _ := base64.StdEncoding.DecodeString(b64)
			// The key as base64, as hex, and as fmt prints a byte slice (some of its bytes, in decimal).
			for _, form := range []string{b64, hex.EncodeToString(raw), strings.Trim(fmt.Sprint(raw[:4]), "[]")} {
				if strings.Contains(out, form) {
					t.Fatalf("%s prints a key: %s", verb, out)
				}
			}
		}
		if !strings.Contains(out, "k1") {
			t.Errorf("%s = %s; want the ids", verb, out)
		}
	}
}

func TestNewKeyLineValidatesTheIDAndIsFresh(t *testing.T) {
	a, err := NewKeyLine("fleet-2025.1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewKeyLine("fleet-2025.1")
	if a == b {
		t.Fatalf("two key lines are equal")
	}
	for _, bad := range []string{"", "a/b", strings.Repeat("x", 33), "a:b"} {
		if _, err := NewKeyLine(bad); err == nil {
			t.Errorf("NewKeyLine(%q) accepted", bad)
		}
	}
}
