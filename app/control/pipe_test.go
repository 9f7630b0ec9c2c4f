package control

import "testing"

// TestPipeSDDLMakesTheUserOwnerAndSoleGrantee: the control pipe's descriptor names the user as owner
// and grants that user alone, in a protected DACL that inherits nothing.
func TestPipeSDDLMakesTheUserOwnerAndSoleGrantee(t *testing.T) {
	for _, c := range []struct{ sid, want string }{
		{"S-1-5-21-1-2-3-1001", "O:S-1-5-21-1-2-3-1001D:P(A;;GA;;;S-1-5-21-1-2-3-1001)"},
		{"S-1-5-21-0-0-0-1000", "O:S-1-5-21-0-0-0-1000D:P(A;;GA;;;S-1-5-21-0-0-0-1000)"}, // Wine's user
	} {
		if got := pipeSDDL(c.sid); got != c.want {
			t.Errorf("pipeSDDL(%q) = %q, want %q", c.sid, got, c.want)
		}
	}
}
