package fleetbench

import (
	"testing"
	"time"
)

// TestOneRefresherAllowsAHandoverOnlyAcrossADisruption pins the rule the fleet proofs judge the
// instances' audit logs by: the refresher may change once per disruption, never back and forth.
func TestOneRefresherAllowsAHandoverOnlyAcrossADisruption(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	refs := func(spec ...any) []Refresh {
		var out []Refresh
		for i := 0; i < len(spec); i += 2 {
			out = append(out, Refresh{Instance: spec[i].(string), At: at(spec[i+1].(int))})
		}
		return out
	}
	tests := []struct {
		name        string
		refs        []Refresh
		disruptions []time.Time
		ok          bool
	}{
		{"one instance", refs("a", 1, "a", 6, "a", 11), nil, true},
		{"no refresh", nil, []time.Time{at(3)}, true},
		{"handover across the kill", refs("a", 1, "a", 6, "b", 12, "b", 17), []time.Time{at(8)}, true},
		{"handover without a disruption", refs("a", 1, "b", 6), nil, false},
		{"disruption after the handover", refs("a", 1, "b", 6), []time.Time{at(7)}, false},
		{"two turns, one disruption", refs("a", 1, "b", 12, "a", 14), []time.Time{at(8)}, false},
		{"interleaved", refs("a", 1, "b", 2, "a", 3, "b", 4), []time.Time{at(0)}, false},
		{"two disruptions, two handovers", refs("a", 1, "b", 12, "c", 30), []time.Time{at(8), at(20)}, true},
		{"back to the first after two disruptions", refs("a", 1, "b", 12, "a", 30), []time.Time{at(8), at(20)}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := OneRefresher(tc.refs, tc.disruptions)
			if (err == nil) != tc.ok {
				t.Errorf("OneRefresher(%s) = %v; want ok %t", FormatRuns(Runs(tc.refs)), err, tc.ok)
			}
		})
	}
}
