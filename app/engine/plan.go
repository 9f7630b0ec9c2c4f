package engine

import (
	"fmt"
	"time"
)

// Policy decides when a server's access token is refreshed. The zero value of each field means its
// default; use Validate to apply defaults and reject nonsense.
type Policy struct {
	// Fraction of the token lifetime after which a refresh is due. Default 0.8.
	Fraction float64 `json:"fraction,omitempty"`
	// Lead is the latest a refresh may be planned before expiry. Default 5 minutes.
	Lead time.Duration `json:"lead,omitempty"`
	// Short is the lifetime below which tokens refresh at half-life instead. Default 10 minutes.
	Short time.Duration `json:"short,omitempty"`
	// Jitter spreads refreshes by ±Jitter of the planned delay, so that servers signed in together do not
	// refresh together. Default 0.1; a negative value disables it.
	Jitter float64 `json:"jitter,omitempty"`
	// Deadline is how long before expiry a refresh runs even while an agent turn is busy. Default 2
	// minutes, or 10% of the lifetime when that is smaller.
	Deadline time.Duration `json:"deadline,omitempty"`
}

// Validate returns p with defaults filled in, or an error naming the bad field.
func (p Policy) Validate() (Policy, error) {
	if p.Fraction == 0 {
		p.Fraction = 0.8
	}
	if p.Lead == 0 {
		p.Lead = 5 * time.Minute
	}
	if p.Short == 0 {
		p.Short = 10 * time.Minute
	}
	if p.Jitter == 0 {
		p.Jitter = 0.1
	}
	if p.Jitter < 0 {
		p.Jitter = 0
	}
	if p.Deadline == 0 {
		p.Deadline = 2 * time.Minute
	}
	switch {
	case p.Fraction <= 0 || p.Fraction >= 1:
		return p, fmt.Errorf("refresh policy: fraction %v must be between 0 and 1", p.Fraction)
	case p.Jitter >= 0.5:
		return p, fmt.Errorf("refresh policy: jitter %v must be below 0.5", p.Jitter)
	case p.Lead < 0 || p.Short < 0 || p.Deadline < 0:
		return p, fmt.Errorf("refresh policy: durations must not be negative")
	}
	return p, nil
}

// Plan is when one token should be refreshed.
type Plan struct {
	// At is when the refresh is due; while busy it is deferred.
	At time.Time
	// Deadline is when the refresh runs even while busy, so deferral never lets the token expire.
	Deadline time.Time
}

// PlanRefresh plans the refresh of a token valid from issued until expiry. r is a uniform random number
// in [0, 1) choosing the jitter. p must have been validated.
func (p Policy) PlanRefresh(issued, expiry time.Time, r float64) Plan {
	life := expiry.Sub(issued)
	if life <= 0 {
		return Plan{At: issued, Deadline: issued}
	}
	var delay time.Duration
	if life < p.Short {
		delay = life / 2
	} else {
		delay = time.Duration(float64(life) * p.Fraction)
		delay = min(delay, life-p.Lead)
	}
	delay = time.Duration(float64(delay) * (1 + p.Jitter*(2*r-1)))
	if life >= p.Short {
		// Jitter spreads refreshes but never past the lead: "no later than 5 minutes before expiry".
		delay = min(delay, life-p.Lead)
	}
	guard := min(p.Deadline, life/10)
	plan := Plan{At: issued.Add(delay), Deadline: expiry.Add(-guard)}
	if plan.At.After(plan.Deadline) {
		plan.At = plan.Deadline
	}
	return plan
}
