package partition

import (
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// KeyBytes appends the encoding of a partition key value to dst and returns the extended
// slice. The encoding is part of the partitioning contract (see the package documentation):
// strings as their bytes, int and long in base 10, float and double in the shortest 'g'
// form, bool as true/false, null as nothing, object as its JSON text.
func KeyBytes(dst []byte, v expr.Value) []byte {
	switch v.T {
	case siddhiql.TypeString, siddhiql.TypeObject:
		return append(dst, v.S...)
	case siddhiql.TypeInt, siddhiql.TypeLong:
		return strconv.AppendInt(dst, v.I, 10)
	case siddhiql.TypeFloat:
		return strconv.AppendFloat(dst, v.F, 'g', -1, 32)
	case siddhiql.TypeDouble:
		return strconv.AppendFloat(dst, v.F, 'g', -1, 64)
	case siddhiql.TypeBool:
		return strconv.AppendBool(dst, v.I != 0)
	}
	return dst // null
}

// FNV-1a 32-bit parameters, as hash/fnv's New32a.
const (
	fnvOffset32 = 2166136261
	fnvPrime32  = 16777619
)

// For returns the group, in [0, groups), of a partition key encoded by KeyBytes: FNV-1a
// 32-bit of key modulo groups. It is part of the on-disk and wire contract: changing it
// re-partitions every cluster. It panics when groups < 1.
func For(key []byte, groups int) uint32 {
	if groups < 1 {
		panic(fmt.Sprintf("partition: For with %d groups", groups))
	}
	if groups == 1 {
		return 0
	}
	h := uint32(fnvOffset32)
	for _, c := range key {
		h ^= uint32(c)
		h *= fnvPrime32
	}
	return uint32(uint64(h) % uint64(groups))
}

// KeyIndex is the position of the partition key among the attributes of a partitioned
// stream, or -1 when the stream is not partitioned (or its key is not one of its
// attributes, which the parser never lets through).
func KeyIndex(def *siddhiql.StreamDef) int {
	if def == nil || def.Routing.Strategy != siddhiql.Partitioned {
		return -1
	}
	for i, a := range def.Attributes {
		if a.Name == def.Routing.PartitionKey {
			return i
		}
	}
	return -1
}

// Part is the share of a batch that goes to one group.
type Part struct {
	Group  uint32
	Events []expr.Row
}

// Router splits batches of events over a fixed number of groups. It is safe for concurrent
// use; its only state is the round-robin rotation.
type Router struct {
	groups int
	next   atomic.Uint64 // round-robin: the next request's turn
}

// NewRouter returns a router over groups partition groups. It panics when groups < 1.
func NewRouter(groups int) *Router {
	if groups < 1 {
		panic(fmt.Sprintf("partition: NewRouter with %d groups", groups))
	}
	return &Router{groups: groups}
}

// Groups is the number of groups the router spreads events over.
func (r *Router) Groups() int { return r.groups }

// Route splits events according to routing. keyIndex is the position of the partition key
// in each row (see KeyIndex); it is used only by the partitioned strategy, where a row too
// short to hold it has a null key. The result is sorted by group, holds only groups that
// receive events, and keeps the events of each part in their original order; it is nil
// when events is empty.
//
// Rows are never copied. A roundRobin part, and every broadcast part, is events itself;
// partitioned parts share one new backing array, or are events itself when the whole batch
// falls in one group. Callers must not modify the rows while the parts are in use.
//
// Route panics when routing is partitioned and keyIndex < 0: that is a caller's bug.
func (r *Router) Route(routing siddhiql.Routing, keyIndex int, events []expr.Row) []Part {
	if len(events) == 0 {
		return nil
	}
	switch routing.Strategy {
	case siddhiql.Partitioned:
		if keyIndex < 0 {
			panic(fmt.Sprintf("partition: partitioned routing on key %q without a key index", routing.PartitionKey))
		}
		return r.partitioned(keyIndex, events)
	case siddhiql.Broadcast:
		parts := make([]Part, r.groups)
		for g := range parts {
			parts[g] = Part{Group: uint32(g), Events: events}
		}
		return parts
	default: // RoundRobin
		turn := r.next.Add(1) - 1
		return []Part{{Group: uint32(turn % uint64(r.groups)), Events: events}}
	}
}

// partitioned splits events by key: one pass to compute each event's group and the part
// sizes, one pass to place the events, so the result costs a fixed number of allocations.
func (r *Router) partitioned(keyIndex int, events []expr.Row) []Part {
	if r.groups == 1 {
		return []Part{{Group: 0, Events: events}}
	}
	var buf [64]byte
	group := make([]uint32, len(events))
	var countsBuf [16]int
	var counts []int
	if r.groups <= len(countsBuf) {
		counts = countsBuf[:r.groups]
	} else {
		counts = make([]int, r.groups)
	}
	for i, row := range events {
		var v expr.Value
		if keyIndex < len(row) {
			v = row[keyIndex]
		}
		g := For(KeyBytes(buf[:0], v), r.groups)
		group[i] = g
		counts[g]++
	}
	n := 0
	for _, c := range counts {
		if c > 0 {
			n++
		}
	}
	if n == 1 { // the whole batch goes to one group: no copy
		return []Part{{Group: group[0], Events: events}}
	}
	parts := make([]Part, 0, n)
	backing := make([]expr.Row, len(events))
	slot := counts // reused: the start of each group's part in backing
	off := 0
	for g, c := range counts {
		if c > 0 {
			parts = append(parts, Part{Group: uint32(g), Events: backing[off : off+c : off+c]}) // capped: appending to a part cannot clobber the next
		}
		slot[g] = off
		off += c
	}
	for i, row := range events {
		backing[slot[group[i]]] = row
		slot[group[i]]++
	}
	return parts
}
