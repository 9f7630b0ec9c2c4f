package keychain

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// DefaultChunkSize is the default largest keychain item, in bytes, after encoding. Windows Credential
// Manager holds 2560 bytes per entry; go-keyring on macOS base64s the item again (×4/3) and refuses a
// `security -i` command over 4096 bytes, so 2000 leaves room for the prefix, service and item name.
const DefaultChunkSize = 2000

// KeyringConfig configures a KeyringStore.
type KeyringConfig struct {
	// Service is the keychain service every item is filed under. Default "authkeeper".
	Service string
	// ChunkSize is the largest item written, in bytes (base64 text). Default DefaultChunkSize; must be
	// at least 16. Above the default, Windows and macOS refuse items (go-keyring's ErrSetDataTooBig,
	// reported as an error that says to lower the chunk size).
	ChunkSize int
	// Timeout bounds every keychain call. A locked keychain may show an unlock prompt, and go-keyring
	// waits for the prompt's answer with no timeout (secret_service.handlePrompt), so without this a
	// prompt nobody answers would hang the caller forever. Default 15s.
	Timeout time.Duration
	// LockPath, if set, names a file locked with LockFile around every Put and Delete, so that two CLI
	// processes writing while the app is not running are serialised. Default "": the app, the one
	// writer, needs only the store's own mutex.
	LockPath string
	// Now stamps Record.Written. Default time.Now.
	Now func() time.Time
	// Logger receives warnings that do not fail a call (leftover chunks that could not be deleted).
	// Default slog.Default().
	Logger *slog.Logger

	// afterChunks, if set, runs after a Put has written the new generation's chunks and before it
	// switches the manifest: the crash test exits the process there.
	afterChunks func()
	// beforeCall, if set, runs before every keychain call with its operation ("get", "set", "delete")
	// and item: tests freeze the Secret Service there.
	beforeCall func(op, item string)
}

// KeyringStore is the Store on the operating system's keychain (Secret Service on Linux, Keychain on
// macOS, Credential Manager on Windows) via go-keyring. Safe for concurrent use; writes are serialised.
type KeyringStore struct {
	cfg KeyringConfig
	kr  keyringCalls
	mu  sync.Mutex // serialises Put and Delete within the process

	// tried is the highest generation a Put of this process has written to, per name (guarded by mu).
	// A failed Put may have abandoned a go-keyring call that still writes a chunk or switches the
	// manifest later (see guard), so its generation number is never used again.
	tried map[string]uint64
}

var _ Store = (*KeyringStore)(nil)

// NewKeyringStore validates cfg and returns the store. It does not touch the keychain; use Check for
// an early, clear error at start.
func NewKeyringStore(cfg KeyringConfig) (*KeyringStore, error) {
	if cfg.Service == "" {
		cfg.Service = "authkeeper"
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.ChunkSize < 16 {
		return nil, fmt.Errorf("keychain: chunk size %d below 16", cfg.ChunkSize)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("keychain: negative timeout %v", cfg.Timeout)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	kr := keyringCalls{service: cfg.Service, timeout: cfg.Timeout, before: cfg.beforeCall}
	return &KeyringStore{cfg: cfg, kr: kr, tried: map[string]uint64{}}, nil
}

// Check reads a probe item to find out early whether the keychain answers and is unlocked; it returns
// nil, or an error wrapping ErrUnavailable or ErrLocked that names the fix.
func (s *KeyringStore) Check() error {
	_, err := s.kr.get("authkeeper-probe")
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// Locked reports whether the keychain is known to be locked, without showing an unlock prompt (reading
// an item of a locked gnome-keyring shows one). False where that cannot be told (macOS, Windows).
func (s *KeyringStore) Locked() bool { return locked() }

// Get implements Store. If the current generation is provably damaged (a chunk the keychain says is
// absent, or chunks failing their checksum or decoding) it falls back to the previous one, with a
// warning. Any other failure (a timeout, a locked keychain, a D-Bus error) is returned as it is: the
// previous generation's refresh token has usually been rotated away, and replaying it would make the
// authorization server revoke the whole grant.
func (s *KeyringStore) Get(name string) (Record, error) {
	m, err := s.manifest(name)
	if err != nil {
		return Record{}, fmt.Errorf("get %s: %w", name, err)
	}
	rec, err := s.readGen(name, m.Cur)
	if err == nil {
		return rec, nil
	}
	if !damaged(err) {
		return Record{}, fmt.Errorf("get %s: %w", name, err)
	}
	// A writer may have switched the manifest and deleted our generation since we read it.
	if m2, err2 := s.manifest(name); err2 == nil && m2.Cur != m.Cur {
		rec, err = s.readGen(name, m2.Cur)
		if err == nil {
			return rec, nil
		}
		if !damaged(err) {
			return Record{}, fmt.Errorf("get %s: %w", name, err)
		}
		m = m2
	}
	if m.Prev != nil {
		rec, err2 := s.readGen(name, *m.Prev)
		if err2 == nil {
			s.cfg.Logger.Warn("keychain: current generation damaged, using the previous one",
				"server", name, "generation", m.Cur.Gen, "previous", m.Prev.Gen, "error", err)
			return rec, nil
		}
		if !damaged(err2) {
			return Record{}, fmt.Errorf("get %s: %w", name, err2)
		}
	}
	return Record{}, fmt.Errorf("get %s: %w: %w", name, ErrCorrupt, err)
}

// errDamaged marks a generation whose chunks are all there but fail their checksum or do not decode.
var errDamaged = errors.New("damaged")

// damaged reports whether err from readGen proves the generation damaged, rather than unreadable for
// now: a chunk the keychain definitely does not have, or chunks that do not check out.
func damaged(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, errDamaged)
}

// Put implements Store: chunks of the new generation first, then the manifest switch, then deletion of
// the generation before the previous one. It returns once the manifest names the new generation, so a
// rotated refresh token survives a crash right after Put returns.
func (s *KeyringStore) Put(name string, rec Record) (Record, error) {
	if err := ValidName(name); err != nil {
		return Record{}, err
	}
	unlock, err := s.lock()
	if err != nil {
		return Record{}, err
	}
	defer unlock()

	old, err := s.manifest(name)
	switch {
	case errors.Is(err, ErrCorrupt):
		// Refusing would leave the server unusable forever; the record was unreadable anyway.
		s.cfg.Logger.Warn("keychain: overwriting an unreadable manifest", "server", name, "error", err)
		old = manifest{}
	case err != nil && !errors.Is(err, ErrNotFound):
		return Record{}, fmt.Errorf("put %s: %w", name, err)
	}
	rec = clone(rec)
	rec.Revision = max(old.Cur.Gen, s.tried[name]) + 1
	s.tried[name] = rec.Revision
	rec.Written = s.cfg.Now().UTC()
	chunks, gen, err := encodeRecord(rec, s.cfg.ChunkSize)
	if err != nil {
		return Record{}, fmt.Errorf("put %s: %w", name, err)
	}
	for i, c := range chunks {
		if err := s.kr.set(chunkKey(name, gen.Gen, i), c); err != nil {
			return Record{}, fmt.Errorf("put %s: chunk %d of %d: %w", name, i+1, len(chunks), err)
		}
	}
	s.deleteFrom(name, gen.Gen, len(chunks)) // a crashed earlier attempt may have left more chunks
	if s.cfg.afterChunks != nil {
		s.cfg.afterChunks()
	}
	next := manifest{V: manifestVersion, Cur: gen}
	if old.Cur.Gen != 0 {
		next.Prev = &old.Cur
	}
	if err := s.kr.set(name, next.encode()); err != nil {
		return Record{}, fmt.Errorf("put %s: switch manifest: %w", name, err)
	}
	if old.Prev != nil {
		s.deleteFrom(name, old.Prev.Gen, 0)
		if old.Prev.Gen > 1 { // left behind if the previous Put crashed right after its switch
			s.deleteFrom(name, old.Prev.Gen-1, 0)
		}
	}
	return clone(rec), nil
}

// Delete implements Store. The manifest goes first, so a crash midway leaves orphan chunks rather than
// a manifest naming missing ones.
func (s *KeyringStore) Delete(name string) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	m, err := s.manifest(name)
	if err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	if err := s.kr.del(name); err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	s.deleteFrom(name, m.Cur.Gen, 0)
	s.deleteFrom(name, m.Cur.Gen+1, 0) // orphans of a crashed Put
	if m.Prev != nil {
		s.deleteFrom(name, m.Prev.Gen, 0)
	}
	return nil
}

func (s *KeyringStore) lock() (unlock func(), err error) {
	s.mu.Lock()
	if s.cfg.LockPath == "" {
		return s.mu.Unlock, nil
	}
	l, err := LockFile(s.cfg.LockPath, s.cfg.Timeout)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	return func() {
		if err := l.Unlock(); err != nil {
			s.cfg.Logger.Warn("keychain: unlock", "path", s.cfg.LockPath, "error", err)
		}
		s.mu.Unlock()
	}, nil
}

func (s *KeyringStore) manifest(name string) (manifest, error) {
	v, err := s.kr.get(name)
	if err != nil {
		return manifest{}, err
	}
	m, err := parseManifest(v)
	if err != nil {
		return manifest{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return m, nil
}

func (s *KeyringStore) readGen(name string, g generation) (Record, error) {
	chunks := make([]string, g.Chunks)
	for i := range chunks {
		c, err := s.kr.get(chunkKey(name, g.Gen, i))
		if err != nil {
			return Record{}, fmt.Errorf("generation %d chunk %d: %w", g.Gen, i, err)
		}
		chunks[i] = c
	}
	rec, err := decodeRecord(chunks, g)
	if err != nil {
		return Record{}, fmt.Errorf("%w: %w", errDamaged, err)
	}
	return rec, nil
}

// deleteFrom deletes generation gen's chunks from index i on, up to the first missing one. Failures are
// logged, not returned: by the time it runs the caller's write has succeeded.
func (s *KeyringStore) deleteFrom(name string, gen uint64, i int) {
	for ; ; i++ {
		err := s.kr.del(chunkKey(name, gen, i))
		if errors.Is(err, ErrNotFound) {
			return
		}
		if err != nil {
			s.cfg.Logger.Warn("keychain: could not delete an old chunk", "server", name,
				"generation", gen, "chunk", i, "error", err)
			return
		}
	}
}
