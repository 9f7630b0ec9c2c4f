package app

import "testing"

// TestDoctorProxyPortComparesAddressesNotStrings pins sameAddr: port 0 in the wanted address means any.
func TestDoctorProxyPortComparesAddressesNotStrings(t *testing.T) {
	for _, tt := range []struct {
		have, want string
		same       bool
	}{
		{"127.0.0.1:47615", "127.0.0.1:47615", true},
		{"127.0.0.1:5000", "127.0.0.1:0", true},
		{"127.0.0.1:5000", "127.0.0.1:47615", false},
		{"[::1]:47615", "[0:0:0:0:0:0:0:1]:47615", true},
		{"127.0.0.1:47615", "[::1]:47615", false},
	} {
		if got := sameAddr(tt.have, tt.want); got != tt.same {
			t.Errorf("sameAddr(%s, %s) = %t, want %t", tt.have, tt.want, got, tt.same)
		}
	}
}

// TestDoctorLinesAndExitStatus pins the line format (status, check, detail, fix) and the exit rule:
// warnings pass, one failure fails.
func TestDoctorLinesAndExitStatus(t *testing.T) {
	ok := checkResult{Check: "owner", Status: checkOK, Detail: "authkeeper 1.2 runs (up 5m0s)"}
	warn := checkResult{Check: "clients", Status: checkWarn, Detail: "no agent's config file points at authkeeper", Fix: "authkeeper clients"}
	fail := checkResult{Check: "token bench", Status: checkFail, Detail: "needs-sign-in", Fix: "authkeeper login bench"}
	for _, tt := range []struct {
		r    checkResult
		want string
	}{
		{ok, "ok    owner: authkeeper 1.2 runs (up 5m0s)"},
		{warn, "warn  clients: no agent's config file points at authkeeper; fix: authkeeper clients"},
		{fail, "FAIL  token bench: needs-sign-in; fix: authkeeper login bench"},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("line %q, want %q", got, tt.want)
		}
	}
	if !passed([]checkResult{ok, warn}) || passed([]checkResult{ok, warn, fail}) || !passed(nil) {
		t.Errorf("passed: warnings must pass and a failure must fail")
	}
}
