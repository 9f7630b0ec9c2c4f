package keychain

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// FileConfig configures a FileStore.
type FileConfig struct {
	// Dir is the directory of credentials.json; it is created, or narrowed, to mode 0700. Required.
	Dir string
	// LockPath, if set, is locked with LockFile around every Put and Delete (see KeyringConfig).
	// Default "".
	LockPath string
	// Timeout bounds the wait for LockPath. Default 15s.
	Timeout time.Duration
	// Now stamps Record.Written. Default time.Now.
	Now func() time.Time
}

// FileStore is the Store the user chooses explicitly (--store file) when no keychain is usable: every
// record in one JSON file private to the user (mode 0600 in a 0700 directory; on Windows owned by the
// user with a DACL granting the user alone), unencrypted. It is never a fallback; the app prints
// Warning at every start. Safe for concurrent use.
type FileStore struct {
	cfg  FileConfig
	path string
	mu   sync.Mutex
}

var _ Store = (*FileStore)(nil)

type fileContent struct {
	V       int               `json:"v"`
	Records map[string]Record `json:"records"`
}

// NewFileStore validates cfg and prepares the directory.
func NewFileStore(cfg FileConfig) (*FileStore, error) {
	if cfg.Dir == "" {
		return nil, errors.New("file store: no directory")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	if err := os.Chmod(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("file store: %w", err)
	}
	return &FileStore{cfg: cfg, path: filepath.Join(cfg.Dir, "credentials.json")}, nil
}

// Path returns the credentials file's path.
func (s *FileStore) Path() string { return s.path }

// Warning is the message the app must show at every start while the file store is in use.
func (s *FileStore) Warning() string {
	return fmt.Sprintf("WARNING: credentials are stored unencrypted in %s (--store file); anyone who can read that file can act as you on your MCP servers. Use the system keychain when one is available.", s.path)
}

// Get implements Store. It reads without the lock: the file is only ever replaced whole.
func (s *FileStore) Get(name string) (Record, error) {
	c, err := s.load()
	if err != nil {
		return Record{}, fmt.Errorf("get %s: %w", name, err)
	}
	rec, ok := c.Records[name]
	if !ok {
		return Record{}, fmt.Errorf("get %s: %w", name, ErrNotFound)
	}
	return rec, nil
}

// Put implements Store.
func (s *FileStore) Put(name string, rec Record) (Record, error) {
	if err := ValidName(name); err != nil {
		return Record{}, err
	}
	var out Record
	err := s.update(func(c *fileContent) error {
		out = clone(rec)
		out.Revision = c.Records[name].Revision + 1
		out.Written = s.cfg.Now().UTC()
		c.Records[name] = out
		return nil
	})
	if err != nil {
		return Record{}, fmt.Errorf("put %s: %w", name, err)
	}
	return clone(out), nil
}

// Delete implements Store.
func (s *FileStore) Delete(name string) error {
	err := s.update(func(c *fileContent) error {
		if _, ok := c.Records[name]; !ok {
			return ErrNotFound
		}
		delete(c.Records, name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

func (s *FileStore) update(change func(*fileContent) error) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.LockPath != "" {
		l, err := LockFile(s.cfg.LockPath, s.cfg.Timeout)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, l.Unlock()) }()
	}
	c, err := s.load()
	if err != nil {
		return err
	}
	if err := change(&c); err != nil {
		return err
	}
	js, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(s.path, js, 0o600)
}

// load reads the file; a missing one is empty. A file others can read or change (CheckPrivate: its
// mode, on Windows its owner and DACL) is refused rather than used, and an undecodable one is reported
// (ErrCorrupt) and left in place: it may hold the only refresh tokens.
func (s *FileStore) load() (fileContent, error) {
	c := fileContent{V: 1, Records: map[string]Record{}}
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	defer f.Close()
	if err := CheckPrivate(f); err != nil {
		return c, fmt.Errorf("%w, then sign in to its servers again: others may have read their tokens", err)
	}
	if err := json.NewDecoder(f).Decode(&c); err != nil || c.V != 1 {
		return c, fmt.Errorf("%w: %s cannot be decoded (v=%d); fix or remove it", ErrCorrupt, s.path, c.V)
	}
	if c.Records == nil {
		c.Records = map[string]Record{}
	}
	return c, nil
}
