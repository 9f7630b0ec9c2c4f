package fleet

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/authkeeper/authkeeper/internal/testbed"
	"github.com/authkeeper/authkeeper/keychain"
)

// TestStoreURLWithTLSClientCertificateAndEtcdAuth opens the fleet from an etcds:// store URL on a
// member that serves TLS only, demands a client certificate, and has etcd's authentication on, with a
// user allowed nothing but the fleet's prefix: so every key the fleet uses lives under it.
func TestStoreURLWithTLSClientCertificateAndEtcdAuth(t *testing.T) {
	t.Parallel() // its own cluster, like the others
	c := testbed.StartEtcdClusterWith(t, 1, testbed.EtcdOptions{TLS: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin := c.Client(t)
	steps := []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "root-pw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "fleet"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "fleet", "/ak/", clientv3.GetPrefixRangeEnd("/ak/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := admin.UserAdd(ctx, "ak", "ak-pw"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "ak", "fleet"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("etcd auth set-up, step %d: %v", i, err)
		}
	}
	dir := t.TempDir()
	storeURL := func(password string) string {
		pw := filepath.Join(dir, "pw-"+password)
		if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		q := url.Values{"cacert": {c.CAFile}, "cert": {c.ClientCertFile}, "key": {c.ClientKeyFile},
			"user": {"ak"}, "password-file": {pw}}
		return fmt.Sprintf("etcds://%s/ak?%s", strings.TrimPrefix(c.Endpoints()[0], "https://"), q.Encode())
	}
	keys, _ := testKeys(t, "k1")
	open := func(raw string) (*Fleet, error) {
		cfg, err := ParseURL(raw)
		if err != nil {
			t.Fatalf("ParseURL: %v", err)
		}
		cfg.Keys, cfg.Instance, cfg.LeaseTTL, cfg.DialTimeout = keys, "alpha", testTTL, 3*time.Second
		return Open(ctx, cfg)
	}

	if f, err := open(storeURL("wrong-pw")); err == nil || errors.Is(err, keychain.ErrUnavailable) ||
		!strings.Contains(err.Error(), "authentication failed") || strings.Contains(err.Error(), "wrong-pw") {
		if f != nil {
			f.Close()
		}
		t.Fatalf("Open with a wrong password = %v; want etcd's authentication failure, not ErrUnavailable", err)
	}

	f, err := open(storeURL("ak-pw"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer f.Close()
	rec := newRecorder()
	f.SetHandler(rec.handler())
	f.Join("srv")
	rec.wait(t, "leader srv true", 5*time.Second)
	stored, err := f.Put("srv", secretRecord(t))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	stored.RefreshStarted = time.Now()
	if _, err := f.Put("srv", stored); err != nil {
		t.Fatalf("marker Put: %v", err)
	}
	if err := f.Ask("srv", "0123456789abcdef", "expiring"); err != nil {
		t.Fatalf("Ask: %v", err)
	}
	st, err := f.Status(ctx)
	if err != nil || st.Servers["srv"].Owner != "alpha" || len(st.Members) != 1 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close (revokes the lease, which needs write access to its keys): %v", err)
	}
}
