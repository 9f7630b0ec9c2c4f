package engine

import (
	"regexp"
	"testing"
)

// TestPipeNameIsOnePerUserAndRuntimeDirWhateverTheSpelling: the Windows control pipe's name prefix is
// \\.\pipe\authkeeper- and 16 hex digits; two spellings of one directory (case, a trailing separator,
// a dot segment) give one prefix, while another directory or another user gives another.
func TestPipeNameIsOnePerUserAndRuntimeDirWhateverTheSpelling(t *testing.T) {
	const alice, bob = "S-1-5-21-1-2-3-1001", "S-1-5-21-1-2-3-1002"
	base := PipeName(`C:\Users\alice\AppData\Roaming\authkeeper\run`, alice)
	if !regexp.MustCompile(`^\\\\\.\\pipe\\authkeeper-[0-9a-f]{16}$`).MatchString(base) {
		t.Fatalf("PipeName = %q, want \\\\.\\pipe\\authkeeper-<16 hex>", base)
	}
	for _, c := range []struct {
		name, dir, sid string
		same           bool
	}{
		{"the same directory and user", `C:\Users\alice\AppData\Roaming\authkeeper\run`, alice, true},
		{"another case", `c:\users\ALICE\appdata\roaming\authkeeper\RUN`, alice, true},
		{"a trailing separator", `C:\Users\alice\AppData\Roaming\authkeeper\run\`, alice, true},
		{"a dot segment", `C:\Users\alice\AppData\Roaming\authkeeper\.\run`, alice, true},
		{"another directory", `C:\Users\alice\AppData\Roaming\authkeeper\run2`, alice, false},
		{"another user", `C:\Users\alice\AppData\Roaming\authkeeper\run`, bob, false},
		{"no user known", `C:\Users\alice\AppData\Roaming\authkeeper\run`, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := PipeName(c.dir, c.sid); (got == base) != c.same {
				t.Errorf("PipeName(%q, %q) = %q; same as %q: %v, want %v", c.dir, c.sid, got, base, got == base, c.same)
			}
		})
	}
}
