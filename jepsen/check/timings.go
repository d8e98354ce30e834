package check

import (
	"fmt"
	"slices"
	"time"
)

// Timings reports how long failovers and operations took. It fails only when a fault
// took a group's leader away and that group never acknowledged a write again (while the
// history holds acknowledged writes at all). A failover is measured from the fault's
// start to the first acknowledgement of an ingest of the group (of any group for a fault
// with Group -1) invoked after the fault began.
func Timings(h *History) Verdict {
	h = orEmpty(h)
	var ingests, reads []time.Duration
	for _, op := range h.Ops {
		if op.Status != OK {
			continue
		}
		switch op.Kind {
		case Ingest:
			ingests = append(ingests, op.Complete-op.Invoke)
		case Read:
			reads = append(reads, op.Complete-op.Invoke)
		}
	}
	failovers, problems := failovers(h, len(ingests) > 0)

	stats := map[string]string{"failovers": itoa(len(failovers))}
	addPercentiles(stats, "failover", failovers, failoverQuantiles)
	addPercentiles(stats, "ingest ack latency", ingests, ingestQuantiles)
	addPercentiles(stats, "read latency", reads, readQuantiles)
	return verdict("timings", "a group whose leader is taken away acknowledges writes again",
		problems, stats)
}

// failovers measures each leader fault; anyOK says whether any write was acknowledged in
// the whole history (if none was, a fault with no write after it proves nothing).
func failovers(h *History, anyOK bool) ([]time.Duration, []string) {
	var times []time.Duration
	var problems []string
	for _, f := range h.Faults {
		if !f.Leader {
			continue
		}
		if d, ok := failover(h.Ops, f); ok {
			times = append(times, d)
			continue
		}
		if !anyOK {
			continue
		}
		if f.Group == -1 {
			problems = append(problems, fmt.Sprintf("no group acknowledged a write after %s at %s", f.Kind, at(f.Start)))
		} else {
			problems = append(problems, fmt.Sprintf("group %d acknowledged no write after %s at %s", f.Group, f.Kind, at(f.Start)))
		}
	}
	return times, problems
}

// failover is the time from the fault's start to the earliest acknowledgement of an ingest
// of the fault's group invoked after the fault began (a write already in flight may be
// acknowledged by the old leader just after the fault, which says nothing about failover).
func failover(ops []Op, f Fault) (time.Duration, bool) {
	var first time.Duration
	found := false
	for _, op := range ops {
		if op.Kind != Ingest || op.Status != OK || op.Invoke < f.Start {
			continue
		}
		if f.Group != -1 && op.Group != f.Group {
			continue
		}
		if !found || op.Complete < first {
			first, found = op.Complete, true
		}
	}
	return first - f.Start, found
}

// quantile is one figure of a latency distribution: "p50" is the 0.5 quantile.
type quantile struct {
	label string
	p     float64
}

var (
	failoverQuantiles = []quantile{{"p50", 0.5}, {"p99", 0.99}, {"max", 1}}
	ingestQuantiles   = []quantile{{"p50", 0.5}, {"p99", 0.99}, {"p999", 0.999}}
	readQuantiles     = []quantile{{"p50", 0.5}, {"p99", 0.99}}
)

// addPercentiles adds "<name> <label>" for each quantile to stats, or "<name>": "n/a"
// when there are no samples.
func addPercentiles(stats map[string]string, name string, samples []time.Duration, qs []quantile) {
	if len(samples) == 0 {
		stats[name] = "n/a"
		return
	}
	sorted := slices.Sorted(slices.Values(samples))
	for _, q := range qs {
		stats[name+" "+q.label] = ms(percentile(sorted, q.p))
	}
}
