package fleetbench

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/authkeeper/authkeeper/app/engine"
)

// Refresh is one refresh an instance's audit log recorded (refreshed or deadline_refresh).
type Refresh struct {
	At       time.Time
	Instance string
}

// Refreshes returns the grant's refreshes from every instance's audit log (the killed ones' too: the
// log is written line by line, so it survives SIGKILL), in time order.
func (b *Bench) Refreshes() []Refresh {
	var out []Refresh
	for _, in := range b.Instances {
		for _, ev := range in.Audit() {
			if ev.Server == Server && (ev.Kind == engine.EventRefreshed || ev.Kind == engine.EventDeadlineRefresh) {
				out = append(out, Refresh{At: ev.Time, Instance: in.ID})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// Adopted counts each instance's adopted events for the grant since from.
func (b *Bench) Adopted(from time.Time) map[string]int {
	out := map[string]int{}
	for _, in := range b.Instances {
		for _, ev := range in.Audit() {
			if ev.Server == Server && ev.Kind == engine.EventAdopted && !ev.Time.Before(from) {
				out[in.ID]++
			}
		}
	}
	return out
}

// ASRefreshes is how many refresh_token grants the AS has received.
func (b *Bench) ASRefreshes(t testing.TB) int {
	t.Helper()
	return b.AS.TokenRequests(t, "refresh_token")
}

// Reuse counts the AS's reuse-detection events: a refresh token presented twice, a grant revoked.
func (b *Bench) Reuse(t testing.TB) int {
	t.Helper()
	n := 0
	for _, ev := range b.AS.Events(t) {
		if strings.HasPrefix(ev, "refresh_token.reused") || strings.HasPrefix(ev, "grant.revoked") {
			n++
		}
	}
	return n
}

// Run is a stretch of consecutive refreshes by one instance.
type Run struct {
	Instance    string
	First, Last time.Time
	Count       int
}

// Runs groups refreshes (in time order) into runs of one instance each.
func Runs(refs []Refresh) []Run {
	var runs []Run
	for _, r := range refs {
		if n := len(runs); n > 0 && runs[n-1].Instance == r.Instance {
			runs[n-1].Last = r.At
			runs[n-1].Count++
			continue
		}
		runs = append(runs, Run{Instance: r.Instance, First: r.At, Last: r.At, Count: 1})
	}
	return runs
}

// OneRefresher checks that the grant had one refresher at a time: the refresher changes only across
// a disruption (an owner killed, the etcd quorum lost and back), each disruption accounting for at
// most one change, in order. Two instances refreshing in turn without one (A, B, A…) is the rotation
// race the fleet exists to prevent, and fails.
func OneRefresher(refs []Refresh, disruptions []time.Time) error {
	runs := Runs(refs)
	next := 0 // the first disruption not yet used by a handover
	for i := 1; i < len(runs); i++ {
		prev, cur := runs[i-1], runs[i]
		for next < len(disruptions) && !disruptions[next].After(prev.Last) {
			next++
		}
		if next == len(disruptions) || !disruptions[next].Before(cur.First) {
			return fmt.Errorf("%s refreshed at %s after %s had at %s with no disruption in between (runs: %s)",
				cur.Instance, cur.First.Format("15:04:05.000"), prev.Instance, prev.Last.Format("15:04:05.000"), FormatRuns(runs))
		}
		next++
	}
	return nil
}

// FormatRuns describes runs for a message: "box1×3 (12:00:01–12:00:09), box2×2 (…)".
func FormatRuns(runs []Run) string {
	parts := make([]string, 0, len(runs))
	for _, r := range runs {
		parts = append(parts, fmt.Sprintf("%s×%d (%s–%s)", r.Instance, r.Count, r.First.Format("15:04:05.000"), r.Last.Format("15:04:05.000")))
	}
	return strings.Join(parts, ", ")
}

// WaitAccounted waits until the refreshes the instances' audit logs record add up to the AS's count
// of refresh grants (a refresh answered a moment ago may not be logged yet), and returns both. They
// differ for good when a refresh reached the AS that no instance adopted, or one was made by
// something that logs none.
func (b *Bench) WaitAccounted(t testing.TB, within time.Duration) (audit, as int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		audit, as = len(b.Refreshes()), b.ASRefreshes(t)
		if audit == as || time.Now().After(deadline) {
			return audit, as
		}
		time.Sleep(100 * time.Millisecond) // the instances write their logs
	}
}
