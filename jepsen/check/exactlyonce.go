package check

import (
	"fmt"
	"maps"
	"slices"
)

// ExactlyOnce checks the counts the aggregation ended with against what was written: for
// every key and one-second bucket, the final live count must be at least the number of
// acknowledged events and at most that plus the events of ingests whose outcome is
// unknown. It also checks that no event reached the alert stream under two output IDs,
// which would mean its (producer, seq) took effect twice.
func ExactlyOnce(h *History) Verdict {
	h = orEmpty(h)
	ws := writes(h)
	var problems []string
	problems = append(problems, conflictProblems(ws)...)
	acked, unknown := writtenCounts(ws)
	problems = append(problems, countProblems(h.FinalLive, acked, unknown)...)
	problems = append(problems, appliedTwiceProblems(h.Alerts)...)

	stats := opStats(h)
	stats["events acked"] = itoa(total(acked))
	stats["events unknown"] = itoa(total(unknown))
	keys, buckets := coverage(h.FinalLive, acked, unknown)
	stats["keys"] = itoa(keys)
	stats["buckets"] = itoa(buckets)
	return verdict("exactly-once",
		"every acknowledged event is counted exactly once, no event is counted twice, and each (producer, seq) takes effect at most once",
		problems, stats)
}

// conflictProblems names (producer, seq) pairs posted with different events: the history
// itself is inconsistent then, and the server's dedup would count only one body.
func conflictProblems(ws []write) []string {
	var problems []string
	for _, w := range ws {
		if w.conflict != nil {
			problems = append(problems, fmt.Sprintf(
				"producer %s seq %d was posted with different events by ops %d and %d (inconsistent history)",
				w.producer, w.seq, w.ops[0], w.conflict.ID))
		}
	}
	return problems
}

// writtenCounts counts the events of acknowledged and of unknown writes per key and bucket.
func writtenCounts(ws []write) (acked, unknown Counts) {
	acked, unknown = Counts{}, Counts{}
	for _, w := range ws {
		var c Counts
		switch w.status {
		case OK:
			c = acked
		case Unknown:
			c = unknown
		default:
			continue
		}
		for _, e := range w.events {
			if c[e.Key] == nil {
				c[e.Key] = map[int64]int64{}
			}
			c[e.Key][bucketOf(e.TS)]++
		}
	}
	return acked, unknown
}

// countProblems compares the final counts with the written ones, bucket by bucket.
func countProblems(counted, acked, unknown Counts) []string {
	if len(counted) == 0 {
		if n := total(acked); n > 0 {
			return []string{fmt.Sprintf("no final live counts were recorded, though %d events were acknowledged", n)}
		}
	}
	var problems []string
	for _, key := range unionKeys(counted, acked, unknown) {
		for _, b := range unionBuckets(key, counted, acked, unknown) {
			c, a, u := counted[key][b], acked[key][b], unknown[key][b]
			switch {
			case c < a:
				problems = append(problems, fmt.Sprintf(
					"key %s bucket %d: counted %d, but %d events were acknowledged (%d acknowledged event(s) lost)",
					key, b, c, a, a-c))
			case c > a+u && a+u == 0:
				problems = append(problems, fmt.Sprintf(
					"key %s bucket %d: counted %d, but no event was written to it (phantom count)", key, b, c))
			case c > a+u:
				problems = append(problems, fmt.Sprintf(
					"key %s bucket %d: counted %d > %d acknowledged + %d unknown (%d too many: counted twice)",
					key, b, c, a, u, c-a-u))
			}
		}
	}
	return problems
}

// appliedTwiceProblems names events that reached the alert stream under more than one
// output ID.
func appliedTwiceProblems(alerts []Output) []string {
	ids := map[eventKey]map[string]bool{}
	for _, o := range alerts {
		k := keyOf(o.Data)
		if ids[k] == nil {
			ids[k] = map[string]bool{}
		}
		ids[k][o.ID] = true
	}
	var problems []string
	for _, k := range slices.SortedFunc(maps.Keys(ids), compareEventKeys) {
		if len(ids[k]) < 2 {
			continue
		}
		list := slices.SortedFunc(maps.Keys(ids[k]), compareIDStrings)
		times := "twice"
		if len(list) > 2 {
			times = fmt.Sprintf("%d times", len(list))
		}
		problems = append(problems, fmt.Sprintf("event %s was applied %s: outputs %s", k, times, listIDs(list)))
	}
	return problems
}

// opStats counts the history's ops by kind and status.
func opStats(h *History) map[string]string {
	n := map[Kind]map[Status]int{Ingest: {}, Read: {}}
	for _, op := range h.Ops {
		if n[op.Kind] != nil {
			n[op.Kind][op.Status]++
		}
	}
	return map[string]string{
		"ingest ops ok":      itoa(n[Ingest][OK]),
		"ingest ops unknown": itoa(n[Ingest][Unknown]),
		"ingest ops fail":    itoa(n[Ingest][Fail]),
	}
}

// total sums every count.
func total(c Counts) int64 {
	var n int64
	for _, buckets := range c {
		for _, v := range buckets {
			n += v
		}
	}
	return n
}

// keyTotal sums one key's counts over its buckets.
func keyTotal(c Counts, key string) int64 {
	var n int64
	for _, v := range c[key] {
		n += v
	}
	return n
}

// unionKeys is every key of any of cs, sorted.
func unionKeys(cs ...Counts) []string {
	set := map[string]bool{}
	for _, c := range cs {
		for k := range c {
			set[k] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// unionBuckets is every bucket of key in any of cs, sorted.
func unionBuckets(key string, cs ...Counts) []int64 {
	set := map[int64]bool{}
	for _, c := range cs {
		for b := range c[key] {
			set[b] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// coverage counts the keys and (key, bucket) pairs of cs together.
func coverage(cs ...Counts) (keys, buckets int) {
	all := unionKeys(cs...)
	for _, k := range all {
		buckets += len(unionBuckets(k, cs...))
	}
	return len(all), buckets
}
