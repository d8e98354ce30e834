package agg

import (
	"math"
	"slices"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// JoinRetention is how many closed arrival buckets of a granularity an aggregation that a
// join reads keeps after they are flushed: a flush then drops only the rows whose arrival
// bucket is older than the JoinRetention buckets before the open one. A join sees those rows
// and the open bucket's, never rows that live only in the shared store. 120 keeps two minutes
// of seconds, two hours of minutes, five days of hours, about four months of days, ten years
// of months and 120 years.
const JoinRetention = 120

// retention is the state of Retain: which granularities keep their closed rows, and the
// oldest arrival bucket start each keeps, computed for the open bucket it was computed at.
type retention struct {
	keep []bool
	from []int64
	at   []int64
	// passed[k] is the dropBefore of granularity k at the last drop pass that looked at k
	// (math.MinInt64 before any), pending[k] the least log index of a row that pass kept at
	// k by its index alone (older than passed[k], not yet flushed), math.MaxUint64 if none.
	// Every row of k older than passed[k] has an index of at least pending[k]: such rows are
	// closed and never change, and rows made later are in open buckets, not older. So while
	// dropBefore(k) is passed[k] and the flushed index below pending[k], no row of k may go.
	passed  []int64
	pending []uint64
}

// forget drops what past passes learned (the rows were replaced); nil-safe.
func (r *retention) forget() {
	if r == nil {
		return
	}
	for k := range r.passed {
		r.passed[k], r.pending[k] = math.MinInt64, math.MaxUint64
	}
}

// Retain makes DropFlushed keep, for granularities ds (all when ds is nil and all is true),
// the closed rows of the JoinRetention arrival buckets before the open one. Retain(nil,
// false) turns it off. It changes no row: the rows it keeps are the state's rows.
func (s *State) Retain(ds []siddhiql.Duration, all bool) {
	n := len(s.def.Durations)
	r := &retention{keep: make([]bool, n), from: make([]int64, n), at: make([]int64, n),
		passed: make([]int64, n), pending: make([]uint64, n)}
	r.forget()
	on := false
	for i, d := range s.def.Durations {
		r.keep[i] = all || slices.Contains(ds, d)
		r.at[i] = math.MinInt64 // not computed yet
		on = on || r.keep[i]
	}
	if !on {
		r = nil
	}
	s.retain = r
	s.forgetFast(s.maxIndex())
}

// Retained lists the granularities whose closed rows DropFlushed keeps for joins.
func (s *State) Retained() []siddhiql.Duration {
	var out []siddhiql.Duration
	if s.retain == nil {
		return nil
	}
	for i, d := range s.def.Durations {
		if s.retain.keep[i] {
			out = append(out, d)
		}
	}
	return out
}

// retainBounds brings the oldest kept bucket of every retained granularity up to the open
// buckets.
func (s *State) retainBounds() {
	r := s.retain
	if r == nil {
		return
	}
	for i, d := range s.def.Durations {
		if !r.keep[i] || r.at[i] == s.open[i] {
			continue
		}
		t := s.open[i]
		for range JoinRetention {
			if t <= MinTime {
				break
			}
			t = s.clock.Start(t-1, d)
		}
		r.from[i], r.at[i] = t, s.open[i]
	}
}

// dropRetained is DropFlushed for a state that keeps rows for joins: it drops a row when its
// cell's last change is at or before index and its arrival bucket starts before dropBefore.
// A granularity none of whose rows may go since the last pass (retention.passed) is not
// looked at, and a flush that finds every granularity so returns at once. For every
// granularity, the cells that cover it are in arrival order, so the rows that may go by
// their bucket are a prefix of them: a group is looked at past those prefixes only when one
// of them holds a flushed row (mayDrop).
func (s *State) dropRetained(index uint64) int {
	s.retainBounds()
	r := s.retain
	var before [maxDurations]int64
	var pending [maxDurations]uint64
	var look uint32
	for k := range s.def.Durations {
		before[k], pending[k] = s.dropBefore(k), math.MaxUint64
		if before[k] != r.passed[k] || r.pending[k] <= index {
			look |= 1 << k
		}
	}
	if look == 0 {
		return 0
	}
	gone := func(c *cell, k int) bool {
		if look&(1<<k) == 0 || !s.startsBefore(c, k, before[k]) {
			return false
		}
		if c.index() <= index {
			return true
		}
		pending[k] = min(pending[k], c.index())
		return false
	}
	n := 0
	for key, g := range s.groups {
		if s.mayDrop(g, index, look, &before, &pending) {
			n += s.dropIn(key, g, gone)
		}
	}
	for k := range s.def.Durations {
		if look&(1<<k) != 0 {
			r.passed[k], r.pending[k] = before[k], pending[k]
		}
	}
	return n
}

// dropBefore is the arrival bucket start before which the closed rows of granularity k may
// be dropped: the open bucket, or the oldest bucket kept for joins. Either starts a bucket
// of k.
func (s *State) dropBefore(k int) int64 {
	if r := s.retain; r != nil && r.keep[k] {
		return min(s.open[k], r.from[k])
	}
	return s.open[k]
}

// startsBefore reports whether the arrival bucket of cell c's row at granularity k (which c
// covers) starts before t, a bucket start of k. A shared cell's row at k does exactly when
// the cell's own bucket does, t being at or after 1970 (buckets nest there, and shared
// cells' buckets start there).
func (s *State) startsBefore(c *cell, k int, t int64) bool {
	if c.lo() == k || t >= 0 {
		return c.agg < t
	}
	agg, _ := s.logical(c, k)
	return agg < t
}

// mayDrop reports whether group g holds a row dropRetained drops at the granularities of
// look (before as there), and lowers pending to the indexes of the rows it keeps by index
// alone. It leaves a granularity at the first cell covering it whose row there is kept by
// its bucket, and stops when it has left them all.
func (s *State) mayDrop(g *group, index uint64, look uint32, before *[maxDurations]int64, pending *[maxDurations]uint64) bool {
	for j := range g.cells {
		c := &g.cells[j]
		lo, hi := c.lo(), c.hi()
		if look&(uint32(1)<<(hi+1)-1)>>lo == 0 {
			continue // covers none of them
		}
		for k := lo; k <= hi; k++ {
			if look&(1<<k) == 0 {
				continue
			}
			switch {
			case !s.startsBefore(c, k, before[k]):
				look &^= 1 << k
			case c.index() <= index:
				return true
			default:
				pending[k] = min(pending[k], c.index())
			}
		}
		if look == 0 {
			return false
		}
	}
	return false
}

// RetentionSpan is about how much time the closed rows of d that a joined aggregation keeps
// cover: JoinRetention buckets of d (months counted as 31 days, years as 366).
func RetentionSpan(d siddhiql.Duration) int64 {
	var ms int64
	switch d {
	case siddhiql.Seconds:
		ms = 1000
	case siddhiql.Minutes:
		ms = 60 * 1000
	case siddhiql.Hours:
		ms = 3600 * 1000
	case siddhiql.Days:
		ms = 24 * 3600 * 1000
	case siddhiql.Months:
		ms = 31 * 24 * 3600 * 1000
	default:
		ms = 366 * 24 * 3600 * 1000
	}
	return JoinRetention * ms
}

// JoinAttrs are the attributes a join reads of an aggregation: AGG_TIMESTAMP (the bucket
// start), then the aggregation's outputs in select order.
func JoinAttrs(def *Def) []siddhiql.Attribute {
	out := make([]siddhiql.Attribute, 0, 1+len(def.Outputs))
	out = append(out, siddhiql.Attribute{Name: "AGG_TIMESTAMP", Type: siddhiql.TypeLong})
	for _, o := range def.Outputs {
		out = append(out, siddhiql.Attribute{Name: o.Name, Type: o.Type})
	}
	return out
}

// JoinRows returns what a join finds in the state for one event: the rows of granularity per
// whose bucket (the event bucket in event-time mode, else the arrival bucket) is in
// [start, end), merged per bucket and group as a store query merges them, each in JoinAttrs
// form, ordered by bucket, then group key. Nil when the state does not keep per.
func (s *State) JoinRows(per siddhiql.Duration, start, end int64) []expr.Row {
	di := slices.Index(s.def.Durations, per)
	if start >= end || di < 0 {
		return nil
	}
	p := &Plan{Def: s.def, Per: per, Start: start, End: end, base: JoinAttrs(s.def)}
	var found []*Row
	m := startMemo{s: s}
	var slab rowSlab
	for key, g := range s.groups {
		// The cells that cover per are in arrival order: in arrival-time mode, where the
		// bucket is the arrival bucket, the scan from the newest stops at the first one
		// before start. A shared cell stands for its row at per.
		for j := len(g.cells) - 1; j >= 0; j-- {
			c := &g.cells[j]
			if !c.covers(di) {
				continue
			}
			agg, evt := m.logical(c, di)
			t := agg
			if s.def.EventTime {
				t = evt
			} else if t < start {
				break
			}
			if t >= start && t < end {
				x := g.ext(j)
				found = append(found, s.def.row(&slab, key, g, c, x, agg, evt, s.def.bases(&slab, c, x)))
			}
		}
	}
	SortRows(found)
	rows := make([]expr.Row, 0, len(found))
	if !s.def.EventTime {
		// One cell per bucket and group: nothing to merge.
		for _, r := range found {
			rows = append(rows, newMerge(s.def, r).with(s.def, r).output(p, r.AggTimestamp))
		}
		return rows
	}
	merged := map[mkey]*merge{}
	var order []mkey
	for _, r := range found {
		k := mkey{r.EventTimestamp, r.key}
		m := merged[k]
		if m == nil {
			m = newMerge(s.def, r)
			merged[k] = m
			order = append(order, k)
		}
		m.add(s.def, r)
	}
	sortMKeys(order)
	for _, k := range order {
		rows = append(rows, merged[k].output(p, k.t))
	}
	return rows
}

// with adds r to m and returns m.
func (m *merge) with(d *Def, r *Row) *merge {
	m.add(d, r)
	return m
}

// Compare orders two values as `order by` does: nulls first, numbers numerically, strings and
// others by their text.
func Compare(a, b expr.Value) int { return compareValues(a, b) }
