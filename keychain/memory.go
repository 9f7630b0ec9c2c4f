package keychain

import (
	"fmt"
	"sync"
	"time"
)

// MemoryStore is a Store in memory, for other packages' unit tests. It behaves like the real stores
// (revisions, Written, ErrNotFound, name validation) but keeps nothing. Safe for concurrent use; the
// zero value is not usable, call NewMemoryStore.
type MemoryStore struct {
	now func() time.Time

	mu      sync.Mutex
	records map[string]Record
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store whose Put stamps records with now (time.Now if nil).
func NewMemoryStore(now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{now: now, records: map[string]Record{}}
}

// Get implements Store.
func (m *MemoryStore) Get(name string) (Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.records[name]
	if !ok {
		return Record{}, fmt.Errorf("get %s: %w", name, ErrNotFound)
	}
	return clone(rec), nil
}

// Put implements Store.
func (m *MemoryStore) Put(name string, rec Record) (Record, error) {
	if err := ValidName(name); err != nil {
		return Record{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	rec = clone(rec)
	rec.Revision = m.records[name].Revision + 1
	rec.Written = m.now().UTC()
	m.records[name] = rec
	return clone(rec), nil
}

// Delete implements Store.
func (m *MemoryStore) Delete(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.records[name]; !ok {
		return fmt.Errorf("delete %s: %w", name, ErrNotFound)
	}
	delete(m.records, name)
	return nil
}
