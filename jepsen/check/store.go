package check

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// StoreMonotonic checks the shared store: a key's stored count, sampled during the run,
// never goes back (up to and including the final read), and after the final flush the
// stored counts equal the live ones for every key and bucket.
func StoreMonotonic(h *History) Verdict {
	h = orEmpty(h)
	problems := regressions(h.Stored, h.FinalStored)
	problems = append(problems, finalStoreProblems(h)...)
	keys, buckets := coverage(h.FinalLive, h.FinalStored)
	return verdict("store-monotonic",
		"stored counts never go back, and after the final flush they equal the live counts",
		problems, map[string]string{
			"samples":          itoa(len(h.Stored)),
			"keys":             itoa(keys),
			"buckets compared": itoa(buckets),
		})
}

// regressions finds each time a key's sampled stored count went down from one sample to
// the next, or from the last sample to the final stored count (when there is one).
func regressions(samples []StoreSample, final Counts) []string {
	byKey := map[string][]StoreSample{}
	for _, s := range samples {
		byKey[s.Key] = append(byKey[s.Key], s)
	}
	var problems []string
	for _, key := range slices.Sorted(maps.Keys(byKey)) {
		ss := byKey[key]
		slices.SortStableFunc(ss, func(a, b StoreSample) int { return cmp.Compare(a.At, b.At) })
		for i := 1; i < len(ss); i++ {
			if ss[i].Count < ss[i-1].Count {
				problems = append(problems, fmt.Sprintf("stored count of key %s went back from %d to %d between %s and %s",
					key, ss[i-1].Count, ss[i].Count, at(ss[i-1].At), at(ss[i].At)))
			}
		}
		last := ss[len(ss)-1]
		if len(final) > 0 && keyTotal(final, key) < last.Count {
			problems = append(problems, fmt.Sprintf("stored count of key %s went back from %d at %s to %d in the final read",
				key, last.Count, at(last.At), keyTotal(final, key)))
		}
	}
	return problems
}

// finalStoreProblems compares the final stored counts with the final live ones. A bucket
// absent from one side counts as zero there.
func finalStoreProblems(h *History) []string {
	live, stored := h.FinalLive, h.FinalStored
	if len(live) == 0 {
		for _, op := range h.Ops {
			if op.Status == OK {
				return []string{"no final live counts were recorded, though ops were acknowledged: nothing to compare the store with"}
			}
		}
	}
	if len(stored) == 0 && total(live) > 0 {
		return []string{fmt.Sprintf("no final stored counts were recorded, though the live counts hold %d events", total(live))}
	}
	var problems []string
	for _, key := range unionKeys(live, stored) {
		for _, b := range unionBuckets(key, live, stored) {
			l, lok := live[key][b]
			s, sok := stored[key][b]
			switch {
			case l == s:
			case !sok:
				problems = append(problems, fmt.Sprintf("key %s bucket %d: missing from the store, live count %d", key, b, l))
			case !lok:
				problems = append(problems, fmt.Sprintf("key %s bucket %d: stored count %d, but the bucket is not live", key, b, s))
			default:
				problems = append(problems, fmt.Sprintf("key %s bucket %d: stored count %d, live count %d", key, b, s, l))
			}
		}
	}
	return problems
}
