package agg

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// Set is a distinctCount base: the distinct values seen, keyed by expr.Value.Key.
type Set map[string]struct{}

// Row is one row of an aggregation table: the contribution of the events that arrived in
// bucket AggTimestamp to event bucket EventTimestamp of one group. In arrival-time mode
// EventTimestamp equals AggTimestamp.
type Row struct {
	AggTimestamp   int64
	EventTimestamp int64
	Group          []expr.Value
	Latest         []expr.Value
	// LastEventTimestamp is the event time of the event the Latest values came from.
	LastEventTimestamp int64
	// Bases are the base columns in Def.Bases order; a BaseSet position holds a null
	// Value and its set is in Sets at the same position.
	Bases []expr.Value
	Sets  []Set
	// Index is the log index of the row's last change.
	Index uint64
	// key is the group's key (Value.Key of every group-by value), for ordering.
	key string
	// detached is set on a row Changed hands out without sets: it shares nothing the state
	// changes later, so Clone need not copy it.
	detached bool
}

// newRow returns a row with room for nBases base columns.
func newRow(nBases int) *Row {
	return &Row{Bases: make([]expr.Value, nBases)}
}

// GroupKey is the row's group key, a deterministic encoding of its group-by values.
func (r *Row) GroupKey() string { return r.key }

// State is the in-memory state of one aggregation: for every granularity the open arrival
// bucket and every row not yet dropped (closed rows wait for DropFlushed or Purge).
// State is not safe for concurrent use.
type State struct {
	def   *Def
	clock *Clock
	// now is the latest stamped arrival time seen (ms).
	now int64
	// open[i] is the start of the open arrival bucket of Def.Durations[i].
	open []int64
	// openEnd[i] is the end of open[i]'s bucket.
	openEnd []int64
	groups  map[string]*group
	// nests is set when the clock's buckets nest (UTC); share[i] when granularities i and
	// i+1 may then share cells (see cell).
	nests bool
	share []bool

	keyBuf  []byte
	keyEnds []int
	times   []int64
	// scratch and scratchExt are drop's buffers.
	scratch    []cell
	scratchExt []*cellExt
	// spans caches, per granularity, the last event bucket computed: events of a batch
	// mostly share their buckets, and zone arithmetic is the costly part of Start.
	spans []span
	// retain, when set, keeps recently closed rows that joins read (joinread.go).
	retain *retention
	// mark is the greatest flushed index DropFlushed was given, and pending the number of
	// rows whose last change is after it: the flush backlog (backlog.go). Neither is
	// encoded: both follow from the rows and the flushed index.
	mark    uint64
	pending int
	// fast is DropFlushed's fast pass (dropfast.go).
	fast fastDrop
}

// span is one bucket [start, end).
type span struct{ start, end int64 }

// eventBucket is Clock.Start(et, Durations[di]) through the span cache.
func (s *State) eventBucket(di int, et int64) int64 {
	sp := &s.spans[di]
	// Before 1970 seconds and minutes round towards zero (Java's remainder): there a
	// bucket does not hold every time up to the next, so the cache is not asked.
	if et >= 0 && et >= sp.start && et < sp.end {
		return sp.start
	}
	d := s.def.Durations[di]
	start := s.clock.Start(et, d)
	*sp = span{start, s.clock.Next(start, d)}
	return start
}

// NewState returns an empty state for def, bucketing with clock.
func NewState(def *Def, clock *Clock) *State {
	nd := len(def.Durations)
	if nd > maxDurations {
		panic("agg: more than 16 granularities") // siddhiql has six
	}
	s := &State{def: def, clock: clock, open: make([]int64, nd), openEnd: make([]int64, nd), groups: map[string]*group{},
		spans: make([]span, nd), nests: clock.nests(), share: make([]bool, nd)}
	for i := 0; i+1 < nd; i++ {
		s.share[i] = s.nests && !def.needsExt() && def.Durations[i] < def.Durations[i+1]
	}
	return s
}

// shares reports whether any of the state's granularities may share cells.
func (s *State) shares() bool { return slices.Contains(s.share, true) }

// Def is the aggregation definition.
func (s *State) Def() *Def { return s.def }

// Now is the latest arrival time the state has seen.
func (s *State) Now() int64 { return s.now }

// Advance moves the state's clock to now (never back), closing arrival buckets it passes.
func (s *State) Advance(now int64) {
	if now < s.now {
		return
	}
	s.now = now
	for i, d := range s.def.Durations {
		if o := s.clock.Start(now, d); o != s.open[i] || s.openEnd[i] == 0 {
			s.open[i], s.openEnd[i] = o, s.clock.Next(o, d)
		}
	}
}

// OpenBucket is the start of the open arrival bucket of granularity d, or false when the
// aggregation does not keep d.
func (s *State) OpenBucket(d siddhiql.Duration) (int64, bool) {
	i := slices.Index(s.def.Durations, d)
	if i < 0 {
		return 0, false
	}
	return s.open[i], true
}

// Add applies events (rows of the input stream) that arrived at stamped time now, as log
// entry index. It checks every event first and changes nothing when one is bad (an event
// time string in the wrong format, say).
func (s *State) Add(index uint64, now int64, events []expr.Row) error {
	d := s.def
	if d.EventTime {
		s.times = s.times[:0]
		for i, ev := range events {
			t, err := s.eventTime(ev)
			if err != nil {
				return fmt.Errorf("agg %s: event %d: %w", d.Name, i, err)
			}
			s.times = append(s.times, t)
		}
	}
	if index > maxIndex {
		return fmt.Errorf("agg %s: log index %d is over the greatest a state records (%d)", d.Name, index, uint64(maxIndex))
	}
	s.Advance(now)
	var t targets
	for k := range d.Durations {
		t.arr[k], t.arrEnd[k] = s.open[k], s.openEnd[k]
		t.evt[k], t.evtEnd[k] = t.arr[k], t.arrEnd[k]
	}
	for i, ev := range events {
		if d.Filter != nil && !d.Filter(ev).Truth() {
			continue
		}
		g := s.group(ev)
		et := s.now
		if d.EventTime {
			et = s.times[i]
			for k := range d.Durations {
				t.evt[k] = s.eventBucket(k, et)
				t.evtEnd[k] = s.spans[k].end
			}
		}
		s.addEvent(g, &t, s.nests && et >= 0 && s.now >= 0, ev, et, index)
		s.touched(g, index)
	}
	return nil
}

func (s *State) eventTime(ev expr.Row) (int64, error) {
	v := ev[s.def.TimeAttr]
	switch v.T {
	case siddhiql.TypeLong:
		return v.I, nil
	case siddhiql.TypeString:
		return ParseTimestamp(v.S)
	case siddhiql.TypeInvalid:
		return 0, fmt.Errorf("event time attribute is null")
	}
	return 0, fmt.Errorf("event time attribute is %s, want long or string", v.T)
}

// Check reports the first event Add would refuse, without changing anything: a group-by
// attribute that is null (a table's primary key cannot hold it) or an unreadable event time.
func (s *State) Check(events []expr.Row) error {
	for i, ev := range events {
		for j, a := range s.def.groupAttrs {
			if ev[a].IsNull() {
				return fmt.Errorf("agg %s: event %d: group-by attribute %s is null", s.def.Name, i, s.def.GroupBy[j].Name)
			}
		}
		if s.def.EventTime {
			if _, err := s.eventTime(ev); err != nil {
				return fmt.Errorf("agg %s: event %d: %w", s.def.Name, i, err)
			}
		}
	}
	return nil
}

// group finds or creates the group of ev. A new group's string values share the bytes of
// its key.
func (s *State) group(ev expr.Row) *group {
	b := s.keyBuf[:0]
	s.keyEnds = s.keyEnds[:0]
	for _, a := range s.def.groupAttrs {
		b = ev[a].Key(b)
		s.keyEnds = append(s.keyEnds, len(b))
	}
	s.keyBuf = b
	if g, ok := s.groups[string(b)]; ok {
		return g
	}
	key := string(b)
	g := newGroup(len(s.def.groupAttrs), s.def.needsExt(), len(s.def.Durations), s.shares())
	for i, a := range s.def.groupAttrs {
		v := ev[a]
		if v.T == siddhiql.TypeString || v.T == siddhiql.TypeObject {
			end := s.keyEnds[i]
			v.S = key[end-len(v.S) : end]
		}
		g.values[i] = v
	}
	s.groups[key] = g
	return g
}

// update folds ev into cell c (ext x).
func (s *State) update(c *cell, x *cellExt, ev expr.Row, et int64, index uint64) {
	d := s.def
	for i, b := range d.Bases {
		switch b.Kind {
		case BaseCount:
			*word(c, x, i)++
		case BaseSum:
			v := ev[b.Attr]
			if v.IsNull() {
				continue
			}
			p := word(c, x, i)
			if isFloat(b.Type) {
				*p = math.Float64bits(math.Float64frombits(*p) + v.AsFloat())
			} else {
				*p = uint64(int64(*p) + v.I)
			}
		case BaseMin, BaseMax:
			v := ev[b.Attr]
			if v.IsNull() {
				continue
			}
			if isNull(c, x, i) {
				d.setBase(c, x, i, v)
				continue
			}
			p := word(c, x, i)
			var replace bool
			if isFloat(b.Type) {
				f, cur := v.AsFloat(), math.Float64frombits(*p)
				replace = (b.Kind == BaseMin && f < cur) || (b.Kind == BaseMax && cur < f)
			} else {
				replace = (b.Kind == BaseMin && v.I < int64(*p)) || (b.Kind == BaseMax && int64(*p) < v.I)
			}
			if replace {
				d.setBase(c, x, i, v)
			}
		case BaseSet:
			v := ev[b.Attr]
			if v.IsNull() {
				continue
			}
			var kb [32]byte
			k := v.Key(kb[:0])
			set := x.sets[i]
			if _, ok := set[string(k)]; !ok {
				set[string(k)] = struct{}{}
			}
		}
	}
	// Latest values: the event with the greatest event time wins, ties to the later
	// arrival (Siddhi's shouldUpdate uses >=).
	if len(d.Latest) > 0 && et >= x.lastEvt {
		x.lastEvt = et
		for i, e := range d.latestExpr {
			x.latest[i] = e(ev)
		}
	}
	if c.index() <= s.mark {
		s.pending += c.hi() - c.lo() + 1 // the cell's rows join the backlog
	}
	c.setIndex(index)
}

// mergeBase folds v into the base value *p as kind k merges: sums and counts add, min and
// max keep the extreme. Nulls change nothing.
func mergeBase(k BaseKind, p *expr.Value, v expr.Value) {
	if v.IsNull() {
		return
	}
	switch k {
	case BaseSum, BaseCount:
		if p.T == siddhiql.TypeDouble {
			p.F += v.AsFloat()
		} else {
			p.I += v.I
		}
	case BaseMin, BaseMax:
		if p.IsNull() || (k == BaseMin && less(v, *p)) || (k == BaseMax && less(*p, v)) {
			*p = v
		}
	}
}

// less orders two non-null numeric values of the same column.
func less(a, b expr.Value) bool {
	if a.IsFloat() || b.IsFloat() {
		return a.AsFloat() < b.AsFloat()
	}
	return a.I < b.I
}

// Rows returns the rows of granularity d held in memory, ordered by AggTimestamp,
// EventTimestamp and group key. The rows are new, but share their group values and sets
// with the state: callers must not change those.
func (s *State) Rows(d siddhiql.Duration) []*Row {
	return s.RowsIn(d, math.MinInt64, math.MaxInt64)
}

// RowsIn is Rows restricted to the rows whose bucket (Plan.Bucket: the event bucket in
// event-time mode, else the arrival bucket) is in [start, end).
func (s *State) RowsIn(d siddhiql.Duration, start, end int64) []*Row {
	di := slices.Index(s.def.Durations, d)
	if di < 0 {
		return nil
	}
	var out []*Row
	m := startMemo{s: s}
	var slab rowSlab
	for key, g := range s.groups {
		for j := range g.cells {
			c := &g.cells[j]
			if !c.covers(di) {
				continue
			}
			agg, evt := m.logical(c, di)
			t := agg
			if s.def.EventTime {
				t = evt
			}
			if t >= start && t < end {
				x := g.ext(j)
				out = append(out, s.def.row(&slab, key, g, c, x, agg, evt, s.def.bases(&slab, c, x)))
			}
		}
	}
	SortRows(out)
	return out
}

// SortRows orders rows by AggTimestamp, EventTimestamp and group key.
func SortRows(rows []*Row) {
	slices.SortFunc(rows, func(a, b *Row) int {
		if a.AggTimestamp != b.AggTimestamp {
			return cmpInt(a.AggTimestamp, b.AggTimestamp)
		}
		if a.EventTimestamp != b.EventTimestamp {
			return cmpInt(a.EventTimestamp, b.EventTimestamp)
		}
		return strings.Compare(a.key, b.key)
	})
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Closed reports whether row r of granularity d is in a closed arrival bucket.
func (s *State) Closed(d siddhiql.Duration, r *Row) bool {
	open, ok := s.OpenBucket(d)
	return ok && r.AggTimestamp < open
}

// Changed returns, per granularity, the rows changed after log index since, in Rows order:
// what a flush must write. It is ChangedIn(since, the greatest index).
func (s *State) Changed(since uint64) map[siddhiql.Duration][]*Row {
	return s.ChangedIn(since, math.MaxUint64)
}

// ChangedIn returns, per granularity, the rows whose last change is after log index since
// and at or before upto, in Rows order: one chunk of a flush (ChangedCounts sizes it).
// Only those rows are built and sorted (one pass over the groups), so a flush of a few
// changed rows among a million costs a scan, not a sort of them all. The rows of one shared
// cell share their bases (callers must not change them). A row without sets shares nothing
// with the state but its group values, which never change: Clone returns it as it is, so a
// flusher that clones what it captures holds the rows once.
func (s *State) ChangedIn(since, upto uint64) map[siddhiql.Duration][]*Row {
	out := map[siddhiql.Duration][]*Row{}
	m := startMemo{s: s}
	var slab rowSlab
	for key, g := range s.groups {
		for j := range g.cells {
			c := &g.cells[j]
			if i := c.index(); i <= since || i > upto {
				continue
			}
			x := g.ext(j)
			bases := s.def.bases(&slab, c, x)
			for k := c.lo(); k <= c.hi(); k++ {
				d := s.def.Durations[k]
				agg, evt := m.logical(c, k)
				r := s.def.row(&slab, key, g, c, x, agg, evt, bases)
				r.detached = r.Sets == nil
				out[d] = append(out[d], r)
			}
		}
	}
	for _, rows := range out {
		SortRows(rows)
	}
	return out
}

// DropFlushed drops the rows of closed arrival buckets whose last change is at or before
// index: they are in the shared store and will not change again. Rows a join still reads
// stay (Retain). It returns how many rows it dropped.
func (s *State) DropFlushed(index uint64) int {
	prevMark := s.mark
	s.mark = max(s.mark, index)
	if s.retain != nil {
		n := s.dropRetained(index) // joinread.go
		s.countPending()
		s.passed(index)
		return n
	}
	gone := func(c *cell, k int) bool {
		if c.index() > index {
			return false
		}
		// A shared cell's row at k is closed exactly when the cell's own bucket starts
		// before k's open one (buckets nest and start at or after 1970).
		if c.lo() == k || s.open[k] >= 0 {
			return c.agg < s.open[k]
		}
		agg, _ := s.logical(c, k)
		return agg < s.open[k]
	}
	var n int
	if s.fastOK() {
		n = s.dropFast(index, prevMark, gone) // dropfast.go
	} else {
		// One pass drops and recounts the backlog: every row is looked at, and the rows
		// changed after the mark are never dropped here (the mark is at or past index).
		pending := 0
		n = s.drop(func(c *cell, k int) bool {
			if c.index() > s.mark {
				pending++
			}
			return gone(c, k)
		})
		s.pending = pending
	}
	s.passed(index)
	return n
}

// Purge drops the closed rows older than each granularity's retention at time now, judged
// on the bucket the row rolls up (AGG_EVENT_TIMESTAMP in event-time mode, else
// AGG_TIMESTAMP). It returns how many rows it dropped per granularity.
func (s *State) Purge(now int64) map[siddhiql.Duration]int {
	counts := map[siddhiql.Duration]int{}
	s.drop(func(c *cell, k int) bool {
		d := s.def.Durations[k]
		keep, ok := s.def.Purge.Retention[d]
		if !s.def.Purge.Enable || !ok || keep == siddhiql.RetainAll {
			return false
		}
		agg, evt := s.logical(c, k)
		if agg >= s.open[k] {
			return false
		}
		if evt < now-keep {
			counts[d]++
			return true
		}
		return false
	})
	return counts
}

// Len is the number of rows held, over every granularity.
func (s *State) Len() int {
	n := 0
	for _, g := range s.groups {
		for j := range g.cells {
			n += g.cells[j].hi() - g.cells[j].lo() + 1
		}
	}
	return n
}

// NewStoredRow builds a row read back from a store: group-by values in Def.GroupBy order,
// latest values in Def.Latest order, bases in Def.Bases order (a BaseSet position's members
// in sets at the same position). It computes the group key that merging needs.
func (d *Def) NewStoredRow(aggTS, eventTS int64, group, latest []expr.Value, lastEventTS int64, bases []expr.Value, sets []Set, index uint64) *Row {
	var kb []byte
	for _, v := range group {
		kb = v.Key(kb)
	}
	if !d.EventTime {
		eventTS = aggTS
	}
	return &Row{AggTimestamp: aggTS, EventTimestamp: eventTS, Group: group, Latest: latest,
		LastEventTimestamp: lastEventTS, Bases: bases, Sets: sets, Index: index, key: string(kb)}
}

// Clone returns a row equal to r that later changes to the state do not touch: a deep copy,
// or r itself when r is a row Changed handed out without sets (already such a row).
func (r *Row) Clone() *Row {
	if r.detached {
		return r
	}
	c := newRow(len(r.Bases))
	c.AggTimestamp, c.EventTimestamp, c.Group = r.AggTimestamp, r.EventTimestamp, r.Group
	c.LastEventTimestamp, c.Index, c.key = r.LastEventTimestamp, r.Index, r.key
	copy(c.Bases, r.Bases)
	c.Latest = append([]expr.Value(nil), r.Latest...)
	if r.Sets != nil {
		c.Sets = make([]Set, len(r.Sets))
		for i, s := range r.Sets {
			if s != nil {
				c.Sets[i] = maps.Clone(s)
			}
		}
	}
	return c
}

// SetMembers returns a set's members sorted: the deterministic form stores persist.
func SetMembers(s Set) []string { return slices.Sorted(maps.Keys(s)) }
