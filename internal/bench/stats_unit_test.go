//go:build linux

package bench

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSpreadOfInterpolatesQuartilesBetweenRanks(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want spread
	}{
		{"one round", []float64{3}, spread{min: 3, q1: 3, med: 3, q3: 3, max: 3, n: 1}},
		{"odd, unsorted", []float64{5, 1, 3, 2, 4}, spread{min: 1, q1: 2, med: 3, q3: 4, max: 5, n: 5}},
		{"even", []float64{1, 2, 3, 4}, spread{min: 1, q1: 1.75, med: 2.5, q3: 3.25, max: 4, n: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, spreadOf(tt.in), cmp.AllowUnexported(spread{})); diff != "" {
				t.Errorf("spreadOf(%v) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestBoundIsMetOnlyWhenTheWholeInterquartileRangeClearsIt(t *testing.T) {
	s := spreadOf([]float64{0.90, 0.94, 0.96, 0.97, 0.99}) // q1 0.94, median 0.96, q3 0.97
	tests := []struct {
		name string
		in   spread
		b    bound
		want bool
	}{
		{"at least, q1 clears", s, bound{limit: 0.94, atLeast: true}, true},
		{"at least, median clears but q1 does not", s, bound{limit: 0.95, atLeast: true}, false},
		{"at most, q3 clears", s, bound{limit: 0.97}, true},
		{"at most, median clears but q3 does not", s, bound{limit: 0.965}, false},
		{"no rounds", spread{}, bound{limit: 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.met(tt.in); got != tt.want {
				t.Errorf("met = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseStraceReadsColumnsWithBlankCells(t *testing.T) {
	const table = `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 26.63    0.000131         131         1           execve
 19.31    0.000095          11         8           mmap
  2.44    0.000012          12         1         1 access
  1.00    0.000010           0        40         3 a_very_long_syscall_name
------ ----------- ----------- --------- --------- ----------------
100.00    0.000492                    50         4 total
`
	got, err := parseStrace(table)
	if err != nil {
		t.Fatal(err)
	}
	want := straceTable{total: 50, rows: []syscallRow{
		{name: "a_very_long_syscall_name", calls: 40, errors: 3},
		{name: "mmap", calls: 8},
		{name: "execve", calls: 1},
		{name: "access", calls: 1, errors: 1},
	}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(straceTable{}, syscallRow{})); diff != "" {
		t.Errorf("parseStrace (-want +got):\n%s", diff)
	}
	if _, err := parseStrace("strace: exec: No such file or directory\n"); err == nil {
		t.Error("parseStrace of a table-less file: no error")
	}
}

// TestBridgeRatiosUseTheFasterMcpRemoteOfEachRound pins the per-round arithmetic of the bridge
// report's ratios on hand-made rounds (one call each, so a round's p50 is that call): the faster
// mcp-remote path of the round, over the bridge (the 3.5× target), over direct (the ceiling), and over
// direct plus the stdio hop (the ceiling with the hop counted).
func TestBridgeRatiosUseTheFasterMcpRemoteOfEachRound(t *testing.T) {
	ms := func(v ...float64) [][]time.Duration {
		out := make([][]time.Duration, len(v))
		for i, x := range v {
			out[i] = []time.Duration{time.Duration(x * float64(time.Millisecond))}
		}
		return out
	}
	b := bridgeResults{latency: []pathResult{
		{Name: pathDirect, Rounds: ms(0.5, 1)},
		{Name: pathProxy, Rounds: ms(0.6, 1.2)},
		{Name: pathBridge, Rounds: ms(1, 2)},
		{Name: pathRemote, Rounds: ms(4, 6)},
		{Name: pathRemoteSilent, Rounds: ms(3, 8)},
		{Name: pathFloor, Rounds: ms(0.25, 0.5)},
	}}
	if got := []float64{b.bestRemote(0), b.bestRemote(1)}; got[0] != float64(3*time.Millisecond) || got[1] != float64(6*time.Millisecond) {
		t.Errorf("bestRemote = %v, want 3 ms and 6 ms", got)
	}
	_, _, speedup := b.bridgeTargets()
	ceiling, _ := b.bridgeContext()
	_, _, hopCeiling := b.floorContext()
	for _, c := range []struct {
		name     string
		got      spread
		min, max float64
	}{
		{"speedup", speedup, 3, 3},         // 3/1, 6/2
		{"ceiling", ceiling, 6, 6},         // 3/0.5, 6/1
		{"with the hop", hopCeiling, 4, 4}, // 3/0.75, 6/1.5
	} {
		if c.got.min != c.min || c.got.max != c.max {
			t.Errorf("%s: min %v max %v, want %v and %v", c.name, c.got.min, c.got.max, c.min, c.max)
		}
	}
}
