package fleet

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/keychain"
)

func TestConfigIsValidatedAndDefaulted(t *testing.T) {
	keys, _ := testKeys(t, "k1")
	ok := Config{Endpoints: []string{"http://127.0.0.1:2379"}, Keys: keys}
	tests := []struct {
		name   string
		change func(*Config)
		err    string
	}{
		{"no endpoints", func(c *Config) { c.Endpoints = nil }, "no etcd endpoints"},
		{"no keys", func(c *Config) { c.Keys = nil }, "no fleet keys"},
		{"relative prefix", func(c *Config) { c.Prefix = "ak" }, "must start with '/'"},
		{"prefix ending in a slash", func(c *Config) { c.Prefix = "/ak/" }, "must start with '/'"},
		{"TTL below the minimum", func(c *Config) { c.LeaseTTL = time.Second }, "below the minimum"},
		{"instance with a slash", func(c *Config) { c.Instance = "a/b" }, "instance id"},
		{"instance too long", func(c *Config) { c.Instance = strings.Repeat("i", 65) }, "instance id"},
		{"user without password", func(c *Config) { c.Username = "u" }, "needs a password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.change(&cfg)
			if _, err := cfg.withDefaults(); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("withDefaults = %v; want an error containing %q", err, tc.err)
			}
		})
	}
	got, err := ok.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if got.Prefix != "/authkeeper" || got.LeaseTTL != 5*time.Second || got.DialTimeout != 5*time.Second ||
		got.OpTimeout != 3*time.Second || got.Logf == nil {
		t.Fatalf("defaults = prefix %q, TTL %v, dial %v, op %v", got.Prefix, got.LeaseTTL, got.DialTimeout, got.OpTimeout)
	}
	if err := validInstance(got.Instance); err != nil || !strings.Contains(got.Instance, "-") {
		t.Fatalf("default instance %q: %v; want host-XXXXXX", got.Instance, err)
	}
	if again, _ := ok.withDefaults(); again.Instance == got.Instance {
		t.Fatalf("two default instance ids are equal: %q", got.Instance)
	}
}

func TestOpenFailsClearlyWhenNoMemberAnswers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	keys, _ := testKeys(t, "k1")
	start := time.Now()
	f, err := Open(context.Background(), Config{Endpoints: []string{"http://" + addr}, Keys: keys, DialTimeout: 500 * time.Millisecond})
	if err == nil {
		f.Close()
		t.Fatalf("Open succeeded without a cluster")
	}
	if !errors.Is(err, keychain.ErrUnavailable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Open = %v; want ErrUnavailable naming %s", err, addr)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Open took %v to fail; want about the 500 ms DialTimeout", took)
	}
}
