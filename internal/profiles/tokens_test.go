package profiles

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/authkeeper/authkeeper/internal/e2e"
	"github.com/authkeeper/authkeeper/keychain"
)

// tokens collects every token seen in a test, for the leak search. Safe for concurrent use.
type tokens struct {
	mu  sync.Mutex
	set map[string]bool
}

// sample adds the tokens the keyring holds for server name (none when it holds no record).
func (s *tokens) sample(name string) {
	ks, err := keychain.NewKeyringStore(keychain.KeyringConfig{Timeout: 5 * time.Second})
	if err != nil {
		return
	}
	rec, err := ks.Get(name)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set == nil {
		s.set = map[string]bool{}
	}
	for _, v := range []string{rec.AccessToken, rec.RefreshToken, rec.Binding.ClientSecret} {
		if len(v) >= 16 {
			s.set[v] = true
		}
	}
}

func (s *tokens) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.set)
}

// leaks counts the tokens that appear in text.
func (s *tokens) leaks(text string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for v := range s.set {
		if strings.Contains(text, v) {
			n++
		}
	}
	return n
}

func asFailure(err error, f **e2e.AuthFailure) bool { return errors.As(err, f) }

func decodeJSON(r io.Reader, v any) error { return json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(v) }
