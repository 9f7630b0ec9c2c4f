package keychain

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Settings is everything authkeeper keeps that is not secret. Tokens, client secrets and registration
// tokens never go here; they go to a Store.
type Settings struct {
	Servers []Server `json:"servers"`
	Prefs   Prefs    `json:"prefs"`
}

// Server is one MCP server the user added.
type Server struct {
	Name string `json:"name"` // unique; see ValidName
	URL  string `json:"url"`  // the MCP endpoint, absolute http(s)
	// ClientID is a pre-registered client id; empty means register dynamically.
	ClientID string `json:"client_id,omitempty"`
	// RefreshFraction is how far into a token's lifetime to refresh it, in (0, 1); 0 means the app's
	// default.
	RefreshFraction float64 `json:"refresh_fraction,omitempty"`
}

// Prefs are app-wide preferences. The zero value is not the default: use DefaultSettings.
type Prefs struct {
	Store         string `json:"store"`         // "keychain" (default) or "file"
	Notifications bool   `json:"notifications"` // default true
	StartAtLogin  bool   `json:"start_at_login"`
	ProxyPort     int    `json:"proxy_port,omitempty"` // 0: the app's default
}

// DefaultSettings is what a missing config file means.
func DefaultSettings() Settings {
	return Settings{Servers: []Server{}, Prefs: Prefs{Store: "keychain", Notifications: true}}
}

// Validate reports the first problem with s.
func (s Settings) Validate() error {
	seen := map[string]bool{}
	for _, srv := range s.Servers {
		if err := ValidName(srv.Name); err != nil {
			return err
		}
		if seen[srv.Name] {
			return fmt.Errorf("server %q listed twice", srv.Name)
		}
		seen[srv.Name] = true
		u, err := url.Parse(srv.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("server %q: URL %q is not an absolute http(s) URL", srv.Name, srv.URL)
		}
		if srv.RefreshFraction < 0 || srv.RefreshFraction >= 1 {
			return fmt.Errorf("server %q: refresh fraction %v outside [0, 1)", srv.Name, srv.RefreshFraction)
		}
	}
	if s.Prefs.Store != "keychain" && s.Prefs.Store != "file" {
		return fmt.Errorf("store %q: must be \"keychain\" or \"file\"", s.Prefs.Store)
	}
	if s.Prefs.ProxyPort < 0 || s.Prefs.ProxyPort > 65535 {
		return fmt.Errorf("proxy port %d out of range", s.Prefs.ProxyPort)
	}
	return nil
}

// ErrCorruptConfig means the config file could not be used; it has been moved aside, and the error
// names where. The caller decides whether to continue with defaults.
var ErrCorruptConfig = errors.New("config file corrupt")

// ConfigFile is the settings file, dir/config.json. Its methods do not lock: CLI processes hold
// LockFile(LockPath()) around a load-modify-save. Safe for concurrent use.
type ConfigFile struct {
	dir string
	now func() time.Time
}

// DefaultConfigDir is os.UserConfigDir()/authkeeper.
func DefaultConfigDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("config dir: %w", err)
	}
	return filepath.Join(d, "authkeeper"), nil
}

// NewConfigFile returns the config file in dir (see DefaultConfigDir); now (time.Now if nil) names
// corrupt files moved aside.
func NewConfigFile(dir string, now func() time.Time) (*ConfigFile, error) {
	if dir == "" {
		return nil, errors.New("config: no directory")
	}
	if now == nil {
		now = time.Now
	}
	return &ConfigFile{dir: dir, now: now}, nil
}

// Path is the config file's path.
func (c *ConfigFile) Path() string { return filepath.Join(c.dir, "config.json") }

// LockPath is the lock file that guards the config and the keychain records against two CLI processes.
func (c *ConfigFile) LockPath() string { return filepath.Join(c.dir, "lock") }

// Load reads the settings; a missing file gives DefaultSettings. A file that does not decode or
// validate is renamed to config.json.corrupt-<time> — never overwritten — and Load returns
// DefaultSettings with an error wrapping ErrCorruptConfig that names both files.
func (c *ConfigFile) Load() (Settings, error) {
	s := DefaultSettings()
	data, err := os.ReadFile(c.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("config: %w", err)
	}
	// Unknown fields are allowed: a config written by a newer authkeeper is not corrupt.
	bad := json.Unmarshal(data, &s)
	if bad == nil {
		bad = s.Validate()
	}
	if bad == nil {
		return s, nil
	}
	aside := fmt.Sprintf("%s.corrupt-%s", c.Path(), c.now().UTC().Format("20060102T150405.000000000Z"))
	if err := os.Rename(c.Path(), aside); err != nil {
		return DefaultSettings(), fmt.Errorf("%w: %s: %v; moving it aside failed too: %w", ErrCorruptConfig, c.Path(), bad, err)
	}
	return DefaultSettings(), fmt.Errorf("%w: %s: %v; it was moved to %s and defaults are in use until you fix it or save new settings",
		ErrCorruptConfig, c.Path(), bad, aside)
}

// Save validates s and writes it atomically (temp file, fsync, rename, fsync of the directory).
func (c *ConfigFile) Save(s Settings) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := writeFileAtomic(c.Path(), append(js, '\n'), 0o600); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
