package engine

import (
	"testing"
	"time"
)

func TestPlanRefresh(t *testing.T) {
	p, err := Policy{}.Validate()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name         string
		life         time.Duration
		r            float64 // jitter draw: 0.5 is none, 0 is -10%, just under 1 is +10%
		wantAt       time.Duration
		wantDeadline time.Duration
	}{
		{"one hour at 80%", time.Hour, 0.5, 48 * time.Minute, 58 * time.Minute},
		{"one hour, jitter low", time.Hour, 0, 43*time.Minute + 12*time.Second, 58 * time.Minute},
		{"one hour, jitter high", time.Hour, 0.999999, 52*time.Minute + 48*time.Second, 58 * time.Minute},
		{"20 minutes capped at 5 min before expiry", 20 * time.Minute, 0.5, 15 * time.Minute, 18 * time.Minute},
		{"20 minutes, jitter high never past the lead", 20 * time.Minute, 0.999999, 15 * time.Minute, 18 * time.Minute},
		{"20 minutes, jitter low", 20 * time.Minute, 0, 13*time.Minute + 30*time.Second, 18 * time.Minute},
		{"short token at half-life", 5 * time.Minute, 0.5, 150 * time.Second, 270 * time.Second},
		{"10 second token", 10 * time.Second, 0.5, 5 * time.Second, 9 * time.Second},
		{"10 second token, jitter high", 10 * time.Second, 0.999999, 5500 * time.Millisecond, 9 * time.Second},
		{"already expired", -time.Second, 0.5, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.PlanRefresh(t0, t0.Add(tt.life), tt.r)
			if d := got.At.Sub(t0); (d - tt.wantAt).Abs() > time.Millisecond {
				t.Errorf("At = +%v, want +%v", d, tt.wantAt)
			}
			if d := got.Deadline.Sub(t0); d != tt.wantDeadline {
				t.Errorf("Deadline = +%v, want +%v", d, tt.wantDeadline)
			}
			if got.At.After(got.Deadline) {
				t.Errorf("At %v after Deadline %v", got.At, got.Deadline)
			}
		})
	}
}

func TestPlanRefreshJitterStaysInBounds(t *testing.T) {
	p, _ := Policy{}.Validate()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i <= 1000; i++ {
		r := float64(i) / 1001
		for _, life := range []time.Duration{15 * time.Second, 7 * time.Minute, time.Hour, 90 * time.Minute} {
			got := p.PlanRefresh(t0, t0.Add(life), r)
			base := 0.8 * float64(life)
			if life < 10*time.Minute {
				base = 0.5 * float64(life)
			}
			lo, hi := time.Duration(base*0.9), time.Duration(base*1.1)
			if life >= 10*time.Minute {
				hi = min(hi, life-5*time.Minute)
				lo = min(lo, hi)
			}
			if d := got.At.Sub(t0); d < lo-time.Millisecond || d > hi+time.Millisecond {
				t.Fatalf("life %v r %v: At +%v outside [%v, %v]", life, r, d, lo, hi)
			}
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		ok   bool
	}{
		{"zero is defaults", Policy{}, true},
		{"fraction 1", Policy{Fraction: 1}, false},
		{"fraction negative", Policy{Fraction: -0.1}, false},
		{"jitter too big", Policy{Jitter: 0.6}, false},
		{"jitter disabled", Policy{Jitter: -1}, true},
		{"negative lead", Policy{Lead: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.p.Validate()
			if (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestBackoffDelay(t *testing.T) {
	var b Backoff
	tests := []struct {
		name       string
		attempt    int
		retryAfter time.Duration
		r          float64
		want       time.Duration
	}{
		{"first retry, no jitter", 0, 0, 0.5, 5 * time.Second},
		{"first retry never below min", 0, 0, 0, 5 * time.Second},
		{"third retry", 2, 0, 0.5, 20 * time.Second},
		{"third retry jitter high", 2, 0, 1, 24 * time.Second},
		{"capped at max", 20, 0, 0.5, 5 * time.Minute},
		{"capped at max with jitter", 20, 0, 1, 5 * time.Minute},
		{"retry-after honoured", 0, 90 * time.Second, 0.5, 90 * time.Second},
		{"retry-after shorter than backoff", 3, time.Second, 0.5, 40 * time.Second},
		{"absurd retry-after capped", 0, 48 * time.Hour, 0.5, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.Delay(tt.attempt, tt.retryAfter, tt.r); got != tt.want {
				t.Errorf("Delay = %v, want %v", got, tt.want)
			}
		})
	}
}
