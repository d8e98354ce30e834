package agg

import (
	"fmt"
	"maps"
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

// group holds one group's rows, per granularity in Def.Durations order, oldest arrival first.
type group struct {
	key    string
	values []expr.Value
	rows   [][]*Row
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
			s.update(g.row(di, arr, evb, d), ev, et, index)
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
	g := &group{key: string(b), rows: make([][]*Row, len(s.def.Durations))}
	for _, a := range s.def.groupAttrs {
		g.values = append(g.values, ev[a])
	}
	s.groups[g.key] = g
	return g
}

// row finds or creates the row (arr, evb) of granularity di. Rows are appended in arrival
// order, so only the tail with AggTimestamp == arr needs a look.
func (g *group) row(di int, arr, evb int64, d *Def) *Row {
	rows := g.rows[di]
	for j := len(rows) - 1; j >= 0 && rows[j].AggTimestamp == arr; j-- {
		if rows[j].EventTimestamp == evb {
			return rows[j]
		}
	}
	r := newRow(len(d.Bases))
	r.AggTimestamp, r.EventTimestamp, r.Group, r.key = arr, evb, g.values, g.key
	r.LastEventTimestamp = -1 << 63
	if len(d.Latest) > 0 {
		r.Latest = make([]expr.Value, len(d.Latest))
	}
	for i, b := range d.Bases {
		switch b.Kind {
		case BaseSum, BaseCount:
			r.Bases[i] = expr.Value{T: b.Type}
		case BaseSet:
			if r.Sets == nil {
				r.Sets = make([]Set, len(d.Bases))
			}
			r.Sets[i] = Set{}
		}
	}
	g.rows[di] = append(rows, r)
	return r
}

func (s *State) update(r *Row, ev expr.Row, et int64, index uint64) {
	d := s.def
	for i, b := range d.Bases {
		p := &r.Bases[i]
		switch b.Kind {
		case BaseCount:
			p.I++
		case BaseSum:
			// Spelled out rather than mergeBase: this is the apply hot path.
			v := ev[b.Attr]
			if v.IsNull() {
				continue
			}
			if p.T == siddhiql.TypeDouble {
				p.F += v.AsFloat()
			} else {
				p.I += v.I
			}
		case BaseMin, BaseMax:
			mergeBase(b.Kind, p, ev[b.Attr])
		case BaseSet:
			v := ev[b.Attr]
			if v.IsNull() {
				continue
			}
			var kb [32]byte
			k := v.Key(kb[:0])
			if _, ok := r.Sets[i][string(k)]; !ok {
				r.Sets[i][string(k)] = struct{}{}
			}
		}
	}
	// Latest values: the event with the greatest event time wins, ties to the later
	// arrival (Siddhi's shouldUpdate uses >=).
	if len(d.Latest) > 0 && et >= r.LastEventTimestamp {
		r.LastEventTimestamp = et
		for i, e := range d.latestExpr {
			r.Latest[i] = e(ev)
		}
	}
	r.Index = index
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
// EventTimestamp and group key. The rows are the state's own: callers must not change them.
func (s *State) Rows(d siddhiql.Duration) []*Row {
	di := slices.Index(s.def.Durations, d)
	if di < 0 {
		return nil
	}
	var out []*Row
	for _, g := range s.groups {
		out = append(out, g.rows[di]...)
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
// what a flush must write.
func (s *State) Changed(since uint64) map[siddhiql.Duration][]*Row {
	out := map[siddhiql.Duration][]*Row{}
	for _, d := range s.def.Durations {
		for _, r := range s.Rows(d) {
			if r.Index > since {
				out[d] = append(out[d], r)
			}
		}
	}
	return out
}

// DropFlushed drops the rows of closed arrival buckets whose last change is at or before
// index: they are in the shared store and will not change again. It returns how many rows
// it dropped.
func (s *State) DropFlushed(index uint64) int {
	return s.drop(func(di int, r *Row) bool { return r.AggTimestamp < s.open[di] && r.Index <= index })
}

// Purge drops the closed rows older than each granularity's retention at time now, judged
// on the bucket the row rolls up (AGG_EVENT_TIMESTAMP in event-time mode, else
// AGG_TIMESTAMP). It returns how many rows it dropped per granularity.
func (s *State) Purge(now int64) map[siddhiql.Duration]int {
	counts := map[siddhiql.Duration]int{}
	s.drop(func(di int, r *Row) bool {
		d := s.def.Durations[di]
		keep, ok := s.def.Purge.Retention[d]
		if !s.def.Purge.Enable || !ok || keep == siddhiql.RetainAll || r.AggTimestamp >= s.open[di] {
			return false
		}
		if r.EventTimestamp < now-keep {
			counts[d]++
			return true
		}
		return false
	})
	return counts
}

func (s *State) drop(gone func(di int, r *Row) bool) int {
	n := 0
	for k, g := range s.groups {
		empty := true
		for di, rows := range g.rows {
			kept := rows[:0]
			for _, r := range rows {
				if gone(di, r) {
					n++
					continue
				}
				kept = append(kept, r)
			}
			clear(rows[len(kept):])
			g.rows[di] = kept
			if len(kept) > 0 {
				empty = false
			}
		}
		if empty {
			delete(s.groups, k)
		}
	}
	return n
}

// Len is the number of rows held, over every granularity.
func (s *State) Len() int {
	n := 0
	for _, g := range s.groups {
		for _, rows := range g.rows {
			n += len(rows)
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
