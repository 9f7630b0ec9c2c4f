package keychain

import (
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/danieljoos/wincred"
	"github.com/google/go-cmp/cmp"
	"github.com/zalando/go-keyring"
)

// On Windows the keyring tests use the user's Credential Manager through go-keyring's wincred back
// end, for real (under Wine in `make test`). go-keyring files an item as a generic credential whose
// target name is "<service>:<item>".

// startKeychain returns a service name no other test or run uses, and deletes every credential filed
// under it when the test ends, failing the test if any is left: Credential Manager is the user's own
// and outlives the test.
func startKeychain(t *testing.T) (service string) {
	t.Helper()
	service = "authkeeper-test-" + rand.Text()[:12]
	t.Cleanup(func() {
		if err := keyring.DeleteAll(service); err != nil {
			t.Errorf("delete the test's credentials: %v", err)
		}
		if left := credentials(t, service); len(left) != 0 {
			t.Errorf("credentials left after cleanup: %v", slices.Sorted(maps.Keys(left)))
		}
	})
	return service
}

// credentials lists, as Credential Manager enumerates them, the items filed under service, with the
// size of each one's blob in bytes.
func credentials(t *testing.T, service string) map[string]int {
	t.Helper()
	creds, err := wincred.FilteredList(service + ":*")
	if err != nil {
		t.Fatalf("list credentials of %s: %v", service, err)
	}
	out := map[string]int{}
	for _, c := range creds {
		out[strings.TrimPrefix(c.TargetName, service+":")] = len(c.CredentialBlob)
	}
	return out
}

// wincredBlobLimit is Credential Manager's largest credential blob (CRED_MAX_CREDENTIAL_BLOB_SIZE,
// 5*512 bytes), which go-keyring enforces itself before writing.
const wincredBlobLimit = 2560

// TestKeyringStoreFitsA9KBRecordIntoWincredOnlyByChunking: a 9 KB access token (an Entra ID token with
// many groups) is over three times what one credential holds. go-keyring refuses it whole, and so does
// the store when told to write chunks that big; with the default chunk size the store writes a
// manifest and chunks each under the limit, reads the record back, and Delete leaves no credential.
func TestKeyringStoreFitsA9KBRecordIntoWincredOnlyByChunking(t *testing.T) {
	service := startKeychain(t)
	rec := testRecord(9 * 1024)

	err := keyring.Set(service, "unchunked", rec.AccessToken)
	if !errors.Is(err, keyring.ErrSetDataTooBig) {
		t.Fatalf("go-keyring Set of %d bytes: %v, want ErrSetDataTooBig", len(rec.AccessToken), err)
	}
	// Wine's Credential Manager does not enforce the limit itself (Windows does), so without go-keyring's
	// check a whole record would fit here and this test would prove nothing about the chunking.
	raw := wincred.NewGenericCredential(service + ":raw-9KB")
	raw.CredentialBlob = []byte(rec.AccessToken)
	t.Logf("a raw 9 KB wincred write, past go-keyring's check: %v", errOrOK(raw.Write()))
	if err := keyring.DeleteAll(service); err != nil {
		t.Fatal(err)
	}

	whole := newKeyringStore(t, service, 16*1024)
	if _, err := whole.Put("srv", rec); !errors.Is(err, keyring.ErrSetDataTooBig) ||
		!strings.Contains(err.Error(), "lower the chunk size") || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("Put in one 16 KB chunk: %v, want go-keyring's ErrSetDataTooBig saying to lower the chunk size", err)
	}
	if left := credentials(t, service); len(left) != 0 {
		t.Errorf("a refused Put left credentials %v", left)
	}

	s := newKeyringStore(t, service, 0)
	if err := s.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	put, err := s.Put("srv", rec)
	if err != nil {
		t.Fatalf("Put with the default chunk size: %v", err)
	}
	got, err := s.Get("srv")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if diff := cmp.Diff(put, got); diff != "" {
		t.Errorf("Get after Put (-put +get):\n%s", diff)
	}

	m, err := parseManifest(mustItem(t, service, "srv"))
	if err != nil {
		t.Fatal(err)
	}
	stored := credentials(t, service)
	want := []string{"srv"}
	for i := range m.Cur.Chunks {
		want = append(want, chunkKey("srv", m.Cur.Gen, i))
	}
	if diff := cmp.Diff(want, slices.Sorted(maps.Keys(stored))); diff != "" {
		t.Errorf("credentials (-manifest and its chunks +listed):\n%s", diff)
	}
	total := 0
	for name, n := range stored {
		if n > DefaultChunkSize || n > wincredBlobLimit {
			t.Errorf("credential %s holds %d bytes, over the chunk size %d", name, n, DefaultChunkSize)
		}
		if name != "srv" {
			total += n
		}
	}
	if m.Cur.Chunks < 2 || total <= wincredBlobLimit {
		t.Errorf("%d chunks of %d bytes in all: the record would have fit one credential", m.Cur.Chunks, total)
	}
	t.Logf("a %d-byte access token: %d bytes encoded in %d chunks, largest credential %d bytes (limit %d)",
		len(rec.AccessToken), total, m.Cur.Chunks, slices.Max(slices.Collect(maps.Values(stored))), wincredBlobLimit)

	if err := s.Delete("srv"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if left := credentials(t, service); len(left) != 0 {
		t.Errorf("credentials left after Delete: %v", left)
	}
	if _, err := s.Get("srv"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
}

func mustItem(t *testing.T, service, key string) string {
	t.Helper()
	v, ok := item(t, service, key)
	if !ok {
		t.Fatalf("item %s not stored", key)
	}
	return v
}

func errOrOK(err error) string {
	if err == nil {
		return "accepted"
	}
	return fmt.Sprintf("refused (%v)", err)
}
