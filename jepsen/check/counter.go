package check

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// counterInput is one operation on a key's event counter, as the linearizability model
// sees it: an ingest adding n events, or a read.
type counterInput struct {
	key   string
	read  bool
	n     int64 // events added (ingest)
	op    int   // the history op's ID (the first op of a merged ingest)
	known bool  // false for an ingest whose outcome is unknown
}

// possibility is one state a key's counter may be in: its count, and the sizes of the
// ingests with an unknown outcome that have begun but have not (yet) been seen to take
// effect, sorted.
type possibility struct {
	count   int64
	pending []int64
}

func comparePossibilities(a, b possibility) int {
	return cmp.Or(cmp.Compare(a.count, b.count), slices.Compare(a.pending, b.pending))
}

// counterState is every state the counter may be in, sorted and without repeats.
type counterState []possibility

// normal sorts the possibilities and drops repeats.
func normal(s counterState) counterState {
	slices.SortFunc(s, comparePossibilities)
	return slices.CompactFunc(s, func(a, b possibility) bool { return comparePossibilities(a, b) == 0 })
}

// counterModel is a per-key, increment-only counter, partitioned by key. An acknowledged
// ingest adds its events at some instant within its interval; a read must return the
// count.
//
// An ingest with an unknown outcome may take effect at any time after it began, or never.
// Modelled directly (an add that never returns), porcupine must try every subset of the
// outstanding unknown adds before each read, which is exponential in their number. The
// model instead adds it, at its invocation, to the counter's pending set; a read then
// takes effect of any sub-multiset of the pending adds that makes the count it returned,
// leaving the rest pending. That admits exactly the same histories (absorbing an add at a
// read is linearizing it just before that read; one never absorbed took effect after the
// last read or never), and since pending adds of equal size are interchangeable the
// states stay few.
var counterModel = porcupine.Model{
	Partition: partitionByKey,
	Init:      func() any { return counterState{{}} },
	Step:      stepCounter,
	Equal: func(a, b any) bool {
		sa, _ := a.(counterState)
		sb, _ := b.(counterState)
		return slices.EqualFunc(sa, sb, func(x, y possibility) bool { return comparePossibilities(x, y) == 0 })
	},
	Hash:              hashCounter,
	DescribeOperation: describeCounterOp,
	DescribeState:     describeCounter,
}

// partitionByKey splits the operations by key, in key order.
func partitionByKey(ops []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	for _, op := range ops {
		in, _ := op.Input.(counterInput)
		byKey[in.key] = append(byKey[in.key], op)
	}
	parts := make([][]porcupine.Operation, 0, len(byKey))
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		parts = append(parts, byKey[k])
	}
	return parts
}

// stepCounter applies one operation to every possibility.
func stepCounter(state, input, output any) (bool, any) {
	s, _ := state.(counterState)
	in, _ := input.(counterInput)
	next := make(counterState, 0, len(s))
	for _, p := range s {
		switch {
		case in.read:
			v, _ := output.(int64)
			next = append(next, absorb(p, v)...)
		case !in.known && in.n > 0:
			pending := append(slices.Clip(p.pending), in.n)
			slices.Sort(pending)
			next = append(next, possibility{p.count, pending})
		default:
			next = append(next, possibility{p.count + in.n, p.pending})
		}
	}
	return len(next) > 0, normal(next)
}

// absorb is every possibility after a read returning v from p: each way of taking effect
// of pending adds that brings the count to v.
func absorb(p possibility, v int64) []possibility {
	need := v - p.count
	if need < 0 {
		return nil
	}
	if need == 0 {
		return []possibility{{v, p.pending}}
	}
	// runs of equal sizes, with the most each later run can still add
	type run struct{ size, n, rest int64 }
	var runs []run
	for _, size := range p.pending {
		if len(runs) > 0 && runs[len(runs)-1].size == size {
			runs[len(runs)-1].n++
		} else {
			runs = append(runs, run{size: size, n: 1})
		}
	}
	for i := len(runs) - 1; i >= 0; i-- {
		runs[i].rest = runs[i].size * runs[i].n
		if i+1 < len(runs) {
			runs[i].rest += runs[i+1].rest
		}
	}
	var out []possibility
	taken := make([]int64, len(runs))
	var walk func(i int, need int64)
	walk = func(i int, need int64) {
		if need == 0 {
			var left []int64
			for j, r := range runs {
				for range r.n - taken[j] {
					left = append(left, r.size)
				}
			}
			out = append(out, possibility{v, left})
			return
		}
		if i == len(runs) || need > runs[i].rest {
			return
		}
		for k := int64(0); k <= runs[i].n && k*runs[i].size <= need; k++ {
			taken[i] = k
			walk(i+1, need-k*runs[i].size)
		}
		taken[i] = 0
	}
	walk(0, need)
	return out
}

func hashCounter(state any) uint64 {
	s, _ := state.(counterState)
	h := fnv.New64a()
	for _, p := range s {
		fmt.Fprint(h, p.count, p.pending, ";")
	}
	return h.Sum64()
}

func describeCounterOp(input, output any) string {
	in, _ := input.(counterInput)
	switch {
	case in.read:
		return fmt.Sprintf("op %d: read %s -> %v", in.op, in.key, output)
	case !in.known:
		return fmt.Sprintf("op %d: add %d to %s (outcome unknown: from here on it may take effect, or never)", in.op, in.n, in.key)
	}
	return fmt.Sprintf("op %d: add %d to %s", in.op, in.n, in.key)
}

func describeCounter(state any) string {
	s, _ := state.(counterState)
	parts := make([]string, 0, len(s))
	for _, p := range s {
		if len(p.pending) == 0 {
			parts = append(parts, fmt.Sprint(p.count))
		} else {
			parts = append(parts, fmt.Sprintf("%d (unknown adds pending: %v)", p.count, p.pending))
		}
	}
	return strings.Join(parts, " or ")
}
