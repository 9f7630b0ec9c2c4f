package fleet

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Config configures Open. ParseURL fills the connection fields from a store URL.
type Config struct {
	// Endpoints are the etcd client URLs (http://host:port, https://host:port). Required.
	Endpoints []string
	// Prefix is the key prefix every key lives under: it starts with '/' and does not end with one.
	// Default: "/authkeeper".
	Prefix string
	// TLS configures TLS to https:// endpoints. Default nil: plaintext.
	TLS *tls.Config
	// Username and Password log in with etcd's authentication. Default: none.
	Username string
	Password string
	// Keys seal and open the records. Required.
	Keys *Keys
	// Instance is this instance's id in the fleet: 1 to 64 printable characters without '/'. Default:
	// the host name, '-', and 6 random hex digits.
	Instance string
	// Version is reported in this instance's membership. Default: empty.
	Version string
	// LeaseTTL is the session lease's time to live: how long an instance that stops renewing keeps its
	// elections and membership. Default 5 s; at least 2 s (etcd's own floor is 1.5 election timeouts).
	LeaseTTL time.Duration
	// DialTimeout bounds Open's first contact with the cluster. Default 5 s.
	DialTimeout time.Duration
	// OpTimeout bounds every request to etcd. Default 3 s.
	OpTimeout time.Duration
	// Logf receives diagnostics (session lost, watch restarted); never token material. Default: none.
	Logf func(format string, args ...any)
}

const (
	defaultLeaseTTL    = 5 * time.Second
	minLeaseTTL        = 2 * time.Second
	defaultDialTimeout = 5 * time.Second
	defaultOpTimeout   = 3 * time.Second
	maxInstanceLen     = 64
)

// withDefaults validates cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.Endpoints) == 0 {
		return cfg, errors.New("fleet: no etcd endpoints")
	}
	if cfg.Keys == nil {
		return cfg, errors.New("fleet: no fleet keys")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !strings.HasPrefix(cfg.Prefix, "/") || strings.HasSuffix(cfg.Prefix, "/") {
		return cfg, fmt.Errorf("fleet: prefix %q must start with '/' and not end with one", cfg.Prefix)
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return cfg, errors.New("fleet: a user name needs a password and a password a user name")
	}
	if cfg.Instance == "" {
		id, err := defaultInstance()
		if err != nil {
			return cfg, err
		}
		cfg.Instance = id
	}
	if err := validInstance(cfg.Instance); err != nil {
		return cfg, err
	}
	switch {
	case cfg.LeaseTTL == 0:
		cfg.LeaseTTL = defaultLeaseTTL
	case cfg.LeaseTTL < minLeaseTTL:
		return cfg, fmt.Errorf("fleet: lease TTL %v is below the minimum %v", cfg.LeaseTTL, minLeaseTTL)
	}
	cfg.LeaseTTL = cfg.LeaseTTL.Round(time.Second) // etcd grants whole seconds
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = defaultDialTimeout
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = defaultOpTimeout
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	return cfg, nil
}

// defaultInstance is the host name, '-', and 6 random hex digits: unique even for two instances on
// one host.
func defaultInstance() (string, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "authkeeper"
	}
	host = strings.ReplaceAll(host, "/", "_")
	if len(host) > maxInstanceLen-7 {
		host = host[:maxInstanceLen-7]
	}
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("fleet: instance id: %w", err)
	}
	return host + "-" + hex.EncodeToString(b), nil
}

// validInstance checks an instance id: 1 to 64 printable ASCII characters without '/' (it is a key
// segment) or spaces.
func validInstance(id string) error {
	if id == "" || len(id) > maxInstanceLen {
		return fmt.Errorf("fleet: instance id %q must be 1 to %d characters", id, maxInstanceLen)
	}
	for _, r := range id {
		if r <= ' ' || r > '~' || r == '/' {
			return fmt.Errorf("fleet: instance id %q: only printable ASCII without '/' or spaces", id)
		}
	}
	return nil
}
