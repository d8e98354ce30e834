package check

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxProblems is how many problems a verdict lists before summing up the rest.
const maxProblems = 20

// verdict builds a Verdict: OK when there are no problems, the list capped at maxProblems
// with a last line counting the rest.
func verdict(name, promise string, problems []string, stats map[string]string) Verdict {
	v := Verdict{Name: name, Promise: promise, OK: len(problems) == 0, Stats: stats}
	if len(problems) > maxProblems {
		rest := len(problems) - maxProblems
		problems = append(problems[:maxProblems:maxProblems], fmt.Sprintf("... and %d more", rest))
	}
	if len(problems) > 0 {
		v.Problems = problems
	}
	return v
}

// orEmpty lets checkers treat a nil history as an empty one.
func orEmpty(h *History) *History {
	if h == nil {
		return &History{}
	}
	return h
}

// bucketOf is the start of the one-second bucket holding event time ts (ms), flooring for
// negative times.
func bucketOf(ts int64) int64 {
	m := ts % 1000
	if m < 0 {
		m += 1000
	}
	return ts - m
}

// eventKey names one event: the i-th event of the ingest (producer, seq).
type eventKey struct {
	producer string
	seq      int64
	i        int64
}

func keyOf(e Event) eventKey { return eventKey{e.Producer, e.Seq, e.I} }

func (k eventKey) String() string {
	return fmt.Sprintf("(%s, seq %d, #%d)", k.producer, k.seq, k.i)
}

func compareEventKeys(a, b eventKey) int {
	return cmp.Or(strings.Compare(a.producer, b.producer), cmp.Compare(a.seq, b.seq), cmp.Compare(a.i, b.i))
}

// write is one logical ingest: every op of the history posting the same (producer, seq),
// merged. The server dedups (producer, seq), so however many ops posted it, it takes effect
// at most once.
type write struct {
	producer string
	seq      int64
	key      string
	process  int     // the process that ran its first op
	status   Status  // OK if any op was acknowledged, else Unknown if any op was, else Fail
	events   []Event // the events of the first op with that status
	ops      []int   // IDs of the ops that posted it, in history order
	// call is the earliest invocation of a non-failed op; ret the earliest acknowledgement
	// (noReturn when none was acknowledged), both in ns since the run started.
	call, ret int64
	// conflict names an op that posted the same (producer, seq) with different events.
	conflict *Op
}

// statusRank orders statuses by what they say about a write taking effect.
func statusRank(s Status) int {
	switch s {
	case OK:
		return 2
	case Unknown:
		return 1
	default:
		return 0
	}
}

// writes merges the history's ingest ops by (producer, seq); ops without a producer stand
// alone. The result is in order of each write's first op.
func writes(h *History) []write {
	var out []write
	type pair struct {
		producer string
		seq      int64
	}
	index := map[pair]int{}
	for n := range h.Ops {
		op := &h.Ops[n]
		if op.Kind != Ingest {
			continue
		}
		id := pair{op.Producer, op.Seq}
		i, seen := index[id]
		if op.Producer == "" || !seen {
			if op.Producer != "" {
				index[id] = len(out)
			}
			out = append(out, write{producer: op.Producer, seq: op.Seq, key: op.Key, process: op.Process,
				status: Fail, call: math.MaxInt64, ret: noReturn})
			i = len(out) - 1
		}
		out[i].add(op)
	}
	return out
}

// add merges one more op posting the write. A status other than OK or Unknown counts as
// Fail.
func (w *write) add(op *Op) {
	first := len(w.ops) == 0
	if !first && w.conflict == nil && !slices.Equal(op.Events, w.events) {
		w.conflict = op
	}
	w.ops = append(w.ops, op.ID)
	if first || statusRank(op.Status) > statusRank(w.status) {
		w.status = []Status{Fail, Unknown, OK}[statusRank(op.Status)]
		w.events = op.Events
	}
	if statusRank(op.Status) == 0 {
		return
	}
	w.call = min(w.call, int64(op.Invoke))
	if op.Status == OK {
		w.ret = min(w.ret, max(int64(op.Complete), int64(op.Invoke)))
	}
}

// noReturn is the return time of an ingest whose outcome is unknown: it may take effect
// at any time after it began.
const noReturn = math.MaxInt64

// outputID is a parsed output ID "GROUP-INDEX-SEQ".
type outputID struct {
	group, index, seq uint64
}

// parseOutputID parses "GROUP-INDEX-SEQ" (decimal integers).
func parseOutputID(s string) (outputID, bool) {
	parts := strings.Split(s, "-")
	if len(parts) != 3 {
		return outputID{}, false
	}
	var n [3]uint64
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return outputID{}, false
		}
		n[i] = v
	}
	return outputID{n[0], n[1], n[2]}, true
}

func compareOutputIDs(a, b outputID) int {
	return cmp.Or(cmp.Compare(a.group, b.group), cmp.Compare(a.index, b.index), cmp.Compare(a.seq, b.seq))
}

// compareIDStrings orders output IDs numerically; IDs that do not parse come after the
// ones that do, in string order.
func compareIDStrings(a, b string) int {
	pa, oka := parseOutputID(a)
	pb, okb := parseOutputID(b)
	switch {
	case oka && okb:
		return cmp.Or(compareOutputIDs(pa, pb), strings.Compare(a, b))
	case oka:
		return -1
	case okb:
		return 1
	}
	return strings.Compare(a, b)
}

// at formats a time since the run started, to the millisecond.
func at(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
}

// percentile is the nearest-rank p-quantile (0 < p <= 1) of sorted, which must not be empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// listIDs joins IDs as "a", "a and b" or "a, b and c".
func listIDs(ids []string) string {
	switch len(ids) {
	case 0:
		return ""
	case 1:
		return ids[0]
	}
	return strings.Join(ids[:len(ids)-1], ", ") + " and " + ids[len(ids)-1]
}

// quote shows a body in a problem, shortened to stay readable.
func quote(body string) string {
	const limit = 120
	if len(body) > limit {
		body = body[:limit] + "..."
	}
	return strconv.Quote(body)
}

func itoa[T ~int | ~int64 | ~uint64](n T) string { return fmt.Sprint(n) }
