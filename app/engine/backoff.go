package engine

import "time"

// Backoff spaces retries after transient failures: exponential from Min to Max, spread by ±20% so that
// servers failing together do not retry together, and never sooner than the server's Retry-After.
type Backoff struct {
	Min time.Duration // default 5 s
	Max time.Duration // default 5 min
}

// maxRetryAfter caps a Retry-After we honour: a misconfigured server must not park a grant for a day.
const maxRetryAfter = time.Hour

// Delay is the wait before retry number attempt (0 for the first retry). retryAfter is the server's
// Retry-After (0 if none); r is a uniform random number in [0, 1).
func (b Backoff) Delay(attempt int, retryAfter time.Duration, r float64) time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 5 * time.Second
	}
	if hi <= 0 {
		hi = 5 * time.Minute
	}
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = time.Duration(float64(d) * (0.8 + 0.4*r))
	d = max(lo, min(d, hi))
	return max(d, min(retryAfter, maxRetryAfter))
}
