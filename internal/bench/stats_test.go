//go:build linux

package bench

import (
	"fmt"
	"slices"
	"time"
)

// pct returns the q-th percentile of sorted durations (nearest rank).
func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q/100*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// spread summarises per-round values: their median, interquartile range (25th to 75th percentile)
// and extremes. A figure judged round by round is reported as its spread, so that one lucky or
// unlucky round on a shared machine can neither meet nor miss a target on its own.
type spread struct {
	min, q1, med, q3, max float64
	n                     int
}

// spreadOf summarises v. Quartiles interpolate linearly between the closest ranks (Hyndman and Fan's
// type 7, the default of R and NumPy), so that the few rounds a benchmark runs still give distinct
// quartiles.
func spreadOf(v []float64) spread {
	if len(v) == 0 {
		return spread{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	q := func(p float64) float64 {
		h := p * float64(len(s)-1)
		lo := int(h)
		if lo+1 >= len(s) {
			return s[lo]
		}
		return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
	}
	return spread{min: s[0], q1: q(0.25), med: q(0.5), q3: q(0.75), max: s[len(s)-1], n: len(s)}
}

// msOf is d in milliseconds, for spreads of latencies.
func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// format renders the spread with f applied to each value: "median (IQR q1–q3, range min–max)".
func (s spread) format(f func(float64) string) string {
	if s.n == 1 {
		return f(s.med) + " (one round)"
	}
	return fmt.Sprintf("%s (IQR %s – %s, range %s – %s)", f(s.med), f(s.q1), f(s.q3), f(s.min), f(s.max))
}

// Formats for spread.format.
func fmtMS(v float64) string    { return fmt.Sprintf("%.3f ms", v) }
func fmtTimes(v float64) string { return fmt.Sprintf("%.2f×", v) }
func fmtPct(v float64) string   { return fmt.Sprintf("%.1f%%", 100*v) }

// bound is a target a per-round figure is held to. It is met only when the whole interquartile range
// of the per-round values lies on its side: at least 75% of the rounds met it, and the median with
// room to spare.
type bound struct {
	limit   float64
	atLeast bool // the figure must be ≥ limit; otherwise ≤ limit
}

func (b bound) met(s spread) bool {
	if s.n == 0 {
		return false
	}
	if b.atLeast {
		return s.q1 >= b.limit
	}
	return s.q3 <= b.limit
}

func metMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", msOf(d)) }

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
