package check

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// Linearizable checks, with porcupine, that every key's count behaved as a single counter
// that ingests add to and reads observe atomically, at some instant between the
// operation's invocation and its completion. An ingest with an unknown outcome may take
// effect at any time after it began, or never. If htmlPath is not empty the
// visualization is written there whatever the outcome. A check that does not finish
// within timeout fails: undecided is not a pass.
func Linearizable(h *History, htmlPath string, timeout time.Duration) Verdict {
	h = orEmpty(h)
	ops := counterOps(h)
	parts := partitionByKey(ops)
	result, info := porcupine.CheckOperationsVerbose(counterModel, ops, timeout)

	stats := map[string]string{
		"ops checked": itoa(len(ops)),
		"keys":        itoa(len(parts)),
		"result":      string(result),
	}
	if htmlPath != "" {
		if err := porcupine.VisualizePath(counterModel, info, htmlPath); err != nil {
			stats["visualization"] = "not written: " + err.Error()
		} else {
			stats["visualization"] = htmlPath
		}
	}

	var problems []string
	switch result {
	case porcupine.Ok:
	case porcupine.Unknown:
		problems = append(problems, fmt.Sprintf(
			"the checker could not decide within %v: not a pass (keys left undecided: %s)",
			timeout, listIDs(undecidedKeys(parts, info))))
	default:
		problems = append(problems, illegalProblems(parts, info)...)
	}
	return verdict("linearizable",
		"every key's count behaves as one counter: each read sees exactly the ingests linearized before it",
		problems, stats)
}

// counterOps turns the history into porcupine operations: every acknowledged or unknown
// ingest (merged by (producer, seq)) adds its events, an unknown one as an instant at its
// invocation that makes it pending (see counterModel); every acknowledged read returns
// its value. Failed ingests and unanswered reads did nothing observable and are left out.
func counterOps(h *History) []porcupine.Operation {
	var ops []porcupine.Operation
	for _, w := range writes(h) {
		if w.status == Fail {
			continue
		}
		ops = append(ops, porcupine.Operation{
			ClientId: max(w.process, 0),
			Input:    counterInput{key: w.key, n: int64(len(w.events)), op: w.ops[0], known: w.status == OK},
			Call:     w.call,
			Return:   returnOf(w),
		})
	}
	for _, op := range h.Ops {
		if op.Kind != Read || op.Status != OK {
			continue
		}
		ops = append(ops, porcupine.Operation{
			ClientId: max(op.Process, 0),
			Input:    counterInput{key: op.Key, read: true, op: op.ID, known: true},
			Call:     int64(op.Invoke),
			Output:   op.Value,
			Return:   max(int64(op.Complete), int64(op.Invoke)),
		})
	}
	return ops
}

// returnOf is when a write returns to the model: its acknowledgement, or for an unknown
// write its invocation, when it becomes pending.
func returnOf(w write) int64 {
	if w.status == OK {
		return w.ret
	}
	return w.call
}

// undecidedKeys are the keys of partitions for which porcupine found no complete
// linearization.
func undecidedKeys(parts [][]porcupine.Operation, info porcupine.LinearizationInfo) []string {
	partials := info.PartialLinearizations()
	var keys []string
	for i, part := range parts {
		if i < len(partials) && longest(partials[i]) >= len(part) {
			continue
		}
		in, _ := part[0].Input.(counterInput)
		keys = append(keys, in.key)
	}
	return keys
}

func longest(seqs [][]int) int {
	n := 0
	for _, s := range seqs {
		n = max(n, len(s))
	}
	return n
}

// maxReadsPerKey is how many impossible reads are listed for one key, so that one key's
// failure does not hide the others'.
const maxReadsPerKey = 5

// illegalProblems explains each key that has no linearization: the reads that saw a
// count no order allows, or else the operation the search could not get past.
func illegalProblems(parts [][]porcupine.Operation, info porcupine.LinearizationInfo) []string {
	partials := info.PartialLinearizations()
	var problems []string
	for i, part := range parts {
		if i < len(partials) && longest(partials[i]) >= len(part) {
			continue
		}
		in, _ := part[0].Input.(counterInput)
		found := readProblems(in.key, part)
		switch {
		case len(found) == 0:
			found = []string{stuckProblem(in.key, part, partials, i)}
		case len(found) > maxReadsPerKey:
			rest := len(found) - maxReadsPerKey
			found = append(found[:maxReadsPerKey], fmt.Sprintf("key %s: ... and %d more reads like these", in.key, rest))
		}
		problems = append(problems, found...)
	}
	if len(problems) == 0 {
		problems = append(problems, "porcupine found the history not linearizable, but named no key")
	}
	return problems
}

// readProblems finds reads of one key that no linearization can explain on their own: a
// count below the events acknowledged before the read began, above the events of every
// ingest begun before it ended, or below a read that completed before it began.
func readProblems(key string, part []porcupine.Operation) []string {
	var adds, reads []porcupine.Operation
	for _, op := range part {
		if in, _ := op.Input.(counterInput); in.read {
			reads = append(reads, op)
		} else {
			adds = append(adds, op)
		}
	}
	slices.SortFunc(reads, func(a, b porcupine.Operation) int {
		return cmp.Or(cmp.Compare(a.Call, b.Call), cmp.Compare(a.Return, b.Return))
	})
	var problems []string
	for _, r := range reads {
		in, _ := r.Input.(counterInput)
		v, _ := r.Output.(int64)
		var before, begun int64
		for _, a := range adds {
			ain, _ := a.Input.(counterInput)
			if ain.known && a.Return < r.Call {
				before += ain.n
			}
			if a.Call <= r.Return {
				begun += ain.n
			}
		}
		what := fmt.Sprintf("key %s: read (op %d, %s to %s) returned %d", key, in.op,
			at(time.Duration(r.Call)), at(time.Duration(r.Return)), v)
		switch {
		case v < before:
			problems = append(problems, fmt.Sprintf("%s, but %d events had been acknowledged before it began (stale read)", what, before))
		case v > begun:
			problems = append(problems, fmt.Sprintf("%s, but only %d events had been posted by the time it ended", what, begun))
		default:
			if p, ok := earlierRead(reads, r); ok {
				pin, _ := p.Input.(counterInput)
				problems = append(problems, fmt.Sprintf("%s, but read op %d, which completed at %s before it began, had returned %d (count went back)",
					what, pin.op, at(time.Duration(p.Return)), p.Output))
			}
		}
	}
	return problems
}

// earlierRead finds a read that completed before r began and returned more than r.
func earlierRead(reads []porcupine.Operation, r porcupine.Operation) (porcupine.Operation, bool) {
	v, _ := r.Output.(int64)
	for _, p := range reads {
		pv, _ := p.Output.(int64)
		if p.Return < r.Call && pv > v {
			return p, true
		}
	}
	return porcupine.Operation{}, false
}

// stuckProblem names the operation the linearizability search could not get past: of the
// operations no partial linearization includes, the one that returned first.
func stuckProblem(key string, part []porcupine.Operation, partials [][][]int, i int) string {
	placed := map[int]bool{}
	if i < len(partials) {
		for _, seq := range partials[i] {
			for _, id := range seq {
				placed[id] = true
			}
		}
	}
	stuck := -1
	for id, op := range part {
		if placed[id] {
			continue
		}
		if stuck < 0 || op.Return < part[stuck].Return {
			stuck = id
		}
	}
	if stuck < 0 {
		return fmt.Sprintf("key %s: no linearization of its %d operations exists", key, len(part))
	}
	op := part[stuck]
	return fmt.Sprintf("key %s: no linearization of its %d operations exists; none gets past %s, invoked at %s",
		key, len(part), counterModel.DescribeOperation(op.Input, op.Output), at(time.Duration(op.Call)))
}
