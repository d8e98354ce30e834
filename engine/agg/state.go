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
	// inline backs Bases when they are few, saving an allocation and a pointer chase on
	// the apply path.
	inline [inlineBases]expr.Value
}

const inlineBases = 3

// newRow returns a row with room for nBases base columns.
func newRow(nBases int) *Row {
	r := &Row{}
	if nBases <= inlineBases {
		r.Bases = r.inline[:nBases:nBases]
	} else {
		r.Bases = make([]expr.Value, nBases)
	}
	return r
}

// GroupKey is the row's group key, a deterministic encoding of its group-by values.
func (r *Row) GroupKey() string { return r.key }

// cell is a row as the state holds it. Every base column other than a set is a number of
// the column's type (Def.Bases[i].Type), so it takes one word: the int64, or the float64's
// bits. With up to inlineWords bases, no latest values and no sets (TradeAggregation: a sum,
// a count and a sum), a cell is 64 bytes with no pointer to follow, against a 288-byte Row
// plus its slices. Rows, Changed and Encode turn cells into Rows and bytes on demand.
type cell struct {
	agg, evt int64
	index    uint64
	// di is the granularity's position in Def.Durations.
	di uint8
	// nulls has bit i set while inline base i is null (a min or max before its first value).
	nulls uint8
	// ext holds what does not fit: nil unless the definition has latest values, sets or
	// more than inlineWords bases.
	ext *cellExt
	w   [inlineWords]uint64
}

const inlineWords = 3

// cellExt is the rest of a cell whose definition needs it.
type cellExt struct {
	lastEvt int64
	latest  []expr.Value
	// sets has the members of BaseSet positions (nil elsewhere); nil without sets.
	sets []Set
	// more are the words of bases past inlineWords, moreNull their null flags.
	more     []uint64
	moreNull []bool
}

func (c *cell) word(i int) *uint64 {
	if i < inlineWords {
		return &c.w[i]
	}
	return &c.ext.more[i-inlineWords]
}

func (c *cell) null(i int) bool {
	if i < inlineWords {
		return c.nulls&(1<<i) != 0
	}
	return c.ext.moreNull[i-inlineWords]
}

func (c *cell) setNull(i int, null bool) {
	if i < inlineWords {
		if null {
			c.nulls |= 1 << i
		} else {
			c.nulls &^= 1 << i
		}
		return
	}
	c.ext.moreNull[i-inlineWords] = null
}

func (c *cell) lastEvt() int64 {
	if c.ext == nil {
		return noEventTime
	}
	return c.ext.lastEvt
}

// noEventTime is a row's LastEventTimestamp before any event with latest values.
const noEventTime = -1 << 63

// isFloat reports whether a column of type t holds a float64 word.
func isFloat(t siddhiql.Type) bool { return t == siddhiql.TypeFloat || t == siddhiql.TypeDouble }

// baseValue is base column i of c as a Value of the column's type (null for a set position and
// for an empty min or max), as a Row holds it.
func (d *Def) baseValue(c *cell, i int) expr.Value {
	b := d.Bases[i]
	if b.Kind == BaseSet || c.null(i) {
		return expr.Value{}
	}
	w := *c.word(i)
	if isFloat(b.Type) {
		return expr.Value{T: b.Type, F: math.Float64frombits(w)}
	}
	return expr.Value{T: b.Type, I: int64(w)}
}

// setBase stores v (of the column's type, or null) as base column i of c.
func (d *Def) setBase(c *cell, i int, v expr.Value) {
	if v.IsNull() {
		*c.word(i) = 0
		c.setNull(i, true)
		return
	}
	c.setNull(i, false)
	if isFloat(d.Bases[i].Type) {
		*c.word(i) = math.Float64bits(v.AsFloat())
	} else {
		*c.word(i) = uint64(v.I)
	}
}

// needsExt reports whether cells of d carry a cellExt.
func (d *Def) needsExt() bool {
	if len(d.Latest) > 0 || len(d.Bases) > inlineWords {
		return true
	}
	for _, b := range d.Bases {
		if b.Kind == BaseSet {
			return true
		}
	}
	return false
}

// newCell returns an empty cell of granularity di: sums and counts zero, mins and maxes null,
// sets empty.
func (d *Def) newCell(di int, arr, evb int64) cell {
	c := cell{agg: arr, evt: evb, di: uint8(di)}
	if d.needsExt() {
		x := &cellExt{lastEvt: noEventTime}
		if len(d.Latest) > 0 {
			x.latest = make([]expr.Value, len(d.Latest))
		}
		if n := len(d.Bases) - inlineWords; n > 0 {
			x.more, x.moreNull = make([]uint64, n), make([]bool, n)
		}
		c.ext = x
	}
	for i, b := range d.Bases {
		switch b.Kind {
		case BaseMin, BaseMax:
			c.setNull(i, true)
		case BaseSet:
			if c.ext.sets == nil {
				c.ext.sets = make([]Set, len(d.Bases))
			}
			c.ext.sets[i] = Set{}
		}
	}
	return c
}

// row returns c as a new Row of group g. The Row shares g's group values and c's sets with
// the state (callers must not change them); the rest is its own.
func (d *Def) row(g *group, c *cell) *Row {
	r := newRow(len(d.Bases))
	r.AggTimestamp, r.EventTimestamp, r.Index = c.agg, c.evt, c.index
	r.Group, r.key = g.values, g.key
	r.LastEventTimestamp = c.lastEvt()
	for i := range d.Bases {
		r.Bases[i] = d.baseValue(c, i)
	}
	if c.ext != nil {
		if c.ext.latest != nil {
			r.Latest = slices.Clone(c.ext.latest)
		}
		r.Sets = c.ext.sets
	}
	return r
}

// group holds one group's rows as cells, ordered by granularity (Def.Durations order), then
// oldest arrival first.
type group struct {
	key    string
	values []expr.Value
	cells  []cell
}

// runEnd is the position after the last cell of granularity di (where a new one goes).
func (g *group) runEnd(di int) int {
	lo, hi := 0, len(g.cells)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if int(g.cells[m].di) <= di {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// State is the in-memory state of one aggregation: for every granularity the open arrival
// bucket and every row not yet dropped (closed rows wait for DropFlushed or Purge).
// State is not safe for concurrent use.
type State struct {
	def   *Def
	clock *Clock
	// now is the latest stamped arrival time seen (ms).
	now int64
	// open[i] is the start of the open arrival bucket of Def.Durations[i].
	open   []int64
	groups map[string]*group

	keyBuf []byte
	times  []int64
	// spans caches, per granularity, the last event bucket computed: events of a batch
	// mostly share their buckets, and zone arithmetic is the costly part of Start.
	spans []span
	// retain, when set, keeps recently closed rows that joins read (joinread.go).
	retain *retention
}

// span is one bucket [start, end).
type span struct{ start, end int64 }

// eventBucket is Clock.Start(et, Durations[di]) through the span cache.
func (s *State) eventBucket(di int, et int64) int64 {
	sp := &s.spans[di]
	if et >= sp.start && et < sp.end {
		return sp.start
	}
	d := s.def.Durations[di]
	start := s.clock.Start(et, d)
	*sp = span{start, s.clock.Next(start, d)}
	return start
}

// NewState returns an empty state for def, bucketing with clock.
func NewState(def *Def, clock *Clock) *State {
	if len(def.Durations) > 256 {
		panic("agg: more than 256 granularities") // siddhiql has seven
	}
	return &State{def: def, clock: clock, open: make([]int64, len(def.Durations)), groups: map[string]*group{},
		spans: make([]span, len(def.Durations))}
}

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
		s.open[i] = s.clock.Start(now, d)
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
	s.Advance(now)
	for i, ev := range events {
		if d.Filter != nil && !d.Filter(ev).Truth() {
			continue
		}
		g := s.group(ev)
		et := s.now
		if d.EventTime {
			et = s.times[i]
		}
		for di := range d.Durations {
			arr := s.open[di]
			evb := arr
			if d.EventTime {
				evb = s.eventBucket(di, et)
			}
			s.update(g.cell(di, arr, evb, d), ev, et, index)
		}
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

// group finds or creates the group of ev.
func (s *State) group(ev expr.Row) *group {
	b := s.keyBuf[:0]
	for _, a := range s.def.groupAttrs {
		b = ev[a].Key(b)
	}
	s.keyBuf = b
	if g, ok := s.groups[string(b)]; ok {
		return g
	}
	// One cell per granularity is what a group holds most of the time.
	g := &group{key: string(b), values: make([]expr.Value, len(s.def.groupAttrs)), cells: make([]cell, 0, len(s.def.Durations))}
	for i, a := range s.def.groupAttrs {
		g.values[i] = ev[a]
	}
	s.groups[g.key] = g
	return g
}

// cell finds or creates the cell (arr, evb) of granularity di. Cells are appended in
// arrival order, so only the tail of di's run with agg == arr needs a look. The pointer is
// good until the group's cells change.
func (g *group) cell(di int, arr, evb int64, d *Def) *cell {
	end := g.runEnd(di)
	for j := end - 1; j >= 0 && int(g.cells[j].di) == di && g.cells[j].agg == arr; j-- {
		if g.cells[j].evt == evb {
			return &g.cells[j]
		}
	}
	g.cells = slices.Insert(g.cells, end, d.newCell(di, arr, evb))
	return &g.cells[end]
}

func (s *State) update(c *cell, ev expr.Row, et int64, index uint64) {
	d := s.def
	for i, b := range d.Bases {
		switch b.Kind {
		case BaseCount:
			*c.word(i)++
		case BaseSum:
			v := ev[b.Attr]
			if v.IsNull() {
				continue
			}
			p := c.word(i)
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
			if c.null(i) {
				d.setBase(c, i, v)
				continue
			}
			p := c.word(i)
			var replace bool
			if isFloat(b.Type) {
				f, cur := v.AsFloat(), math.Float64frombits(*p)
				replace = (b.Kind == BaseMin && f < cur) || (b.Kind == BaseMax && cur < f)
			} else {
				replace = (b.Kind == BaseMin && v.I < int64(*p)) || (b.Kind == BaseMax && int64(*p) < v.I)
			}
			if replace {
				d.setBase(c, i, v)
			}
		case BaseSet:
			v := ev[b.Attr]
			if v.IsNull() {
				continue
			}
			var kb [32]byte
			k := v.Key(kb[:0])
			set := c.ext.sets[i]
			if _, ok := set[string(k)]; !ok {
				set[string(k)] = struct{}{}
			}
		}
	}
	// Latest values: the event with the greatest event time wins, ties to the later
	// arrival (Siddhi's shouldUpdate uses >=).
	if len(d.Latest) > 0 && et >= c.ext.lastEvt {
		c.ext.lastEvt = et
		for i, e := range d.latestExpr {
			c.ext.latest[i] = e(ev)
		}
	}
	c.index = index
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
	for _, g := range s.groups {
		for j := g.runEnd(di) - 1; j >= 0 && int(g.cells[j].di) == di; j-- {
			c := &g.cells[j]
			t := c.agg
			if s.def.EventTime {
				t = c.evt
			}
			if t >= start && t < end {
				out = append(out, s.def.row(g, c))
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
// what a flush must write. Only those rows are built and sorted (one pass over the groups),
// so a flush of a few changed rows among a million costs a scan, not a sort of them all.
func (s *State) Changed(since uint64) map[siddhiql.Duration][]*Row {
	out := map[siddhiql.Duration][]*Row{}
	for _, g := range s.groups {
		for j := range g.cells {
			c := &g.cells[j]
			if c.index > since {
				d := s.def.Durations[c.di]
				out[d] = append(out[d], s.def.row(g, c))
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
	if s.retain != nil {
		return s.dropRetained(index) // joinread.go
	}
	return s.drop(func(c *cell) bool { return c.agg < s.open[c.di] && c.index <= index })
}

// Purge drops the closed rows older than each granularity's retention at time now, judged
// on the bucket the row rolls up (AGG_EVENT_TIMESTAMP in event-time mode, else
// AGG_TIMESTAMP). It returns how many rows it dropped per granularity.
func (s *State) Purge(now int64) map[siddhiql.Duration]int {
	counts := map[siddhiql.Duration]int{}
	s.drop(func(c *cell) bool {
		d := s.def.Durations[c.di]
		keep, ok := s.def.Purge.Retention[d]
		if !s.def.Purge.Enable || !ok || keep == siddhiql.RetainAll || c.agg >= s.open[c.di] {
			return false
		}
		if c.evt < now-keep {
			counts[d]++
			return true
		}
		return false
	})
	return counts
}

func (s *State) drop(gone func(c *cell) bool) int {
	n := 0
	nd := len(s.def.Durations)
	for k, g := range s.groups {
		kept := g.cells[:0]
		for _, c := range g.cells {
			if gone(&c) {
				n++
				continue
			}
			kept = append(kept, c)
		}
		clear(g.cells[len(kept):])
		switch {
		case len(kept) == 0:
			delete(s.groups, k)
		case cap(kept) > 2*nd && len(kept) <= cap(kept)/4:
			// A burst of late rows grew the cells; give the room back.
			g.cells = append(make([]cell, 0, max(nd, 2*len(kept))), kept...)
		default:
			g.cells = kept
		}
	}
	return n
}

// Len is the number of rows held, over every granularity.
func (s *State) Len() int {
	n := 0
	for _, g := range s.groups {
		n += len(g.cells)
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

// Clone returns a deep copy of r that later changes to the state do not touch.
func (r *Row) Clone() *Row {
	c := &Row{AggTimestamp: r.AggTimestamp, EventTimestamp: r.EventTimestamp, Group: r.Group,
		LastEventTimestamp: r.LastEventTimestamp, Index: r.Index, key: r.key}
	c.Latest = append([]expr.Value(nil), r.Latest...)
	c.Bases = append([]expr.Value(nil), r.Bases...)
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
