package e2e

import "sync"

// Secrets collects the tokens a test has seen, to check afterwards that none shows up where it must
// not (outputs, files, logs). Values shorter than 16 bytes are not tokens (empty or placeholder
// values) and are ignored. The zero value is ready; safe for concurrent use.
type Secrets struct {
	mu  sync.Mutex
	set map[string]bool
}

// Add records tokens.
func (s *Secrets) Add(tokens ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set == nil {
		s.set = map[string]bool{}
	}
	for _, v := range tokens {
		if len(v) >= 16 {
			s.set[v] = true
		}
	}
}

// List returns every token recorded, in no order.
func (s *Secrets) List() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.set))
	for v := range s.set {
		out = append(out, v)
	}
	return out
}
