package agg

import (
	"math"
	"slices"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// cell is rows as the state holds them: the rows of granularities lo through hi
// (Def.Durations positions) of one group while they hold the same values. A key seen in one
// second only has the same sums in its second, minute, hour, day, month and year rows: one
// cell stands for all six until a finer bucket closes and the next event reaches the coarser
// rows only; then the cell splits (State.addEvent). agg and evt are granularity lo's buckets;
// granularity k's are their starts at k (State.logical), which is why cells are shared only
// where buckets nest (UTC, times from 1970 on; see State.share).
//
// Every base column other than a set is a number of the column's type (Def.Bases[i].Type),
// so it takes one word: the int64, or the float64's bits. With up to inlineWords bases, no
// latest values and no sets (TradeAggregation: a sum, a count and a sum), a cell is 48 bytes
// without pointers. Rows, Changed and Encode turn cells into Rows and bytes on demand.
type cell struct {
	agg, evt int64
	// meta packs the log index of the cell's last change (above metaShift), the null flags
	// of the inline words (bit 8+i while inline base i is null: a min or max before its
	// first value), hi (bits 4-7) and lo (bits 0-3).
	meta uint64
	w    [inlineWords]uint64
}

const (
	inlineWords = 3
	metaShift   = 16
	// maxIndex is the greatest log index a cell records.
	maxIndex = 1<<(64-metaShift) - 1
	// maxDurations is how many granularities a cell's lo and hi can name.
	maxDurations = 16
)

func (c *cell) lo() int       { return int(c.meta & 0xf) }
func (c *cell) hi() int       { return int(c.meta >> 4 & 0xf) }
func (c *cell) index() uint64 { return c.meta >> metaShift }
func (c *cell) covers(k int) bool {
	return c.lo() <= k && k <= c.hi()
}

func (c *cell) setIndex(i uint64) { c.meta = c.meta&(1<<metaShift-1) | i<<metaShift }

func (c *cell) setSpan(lo, hi int) { c.meta = c.meta&^0xff | uint64(hi)<<4 | uint64(lo) }

// cellExt is the rest of a cell whose definition needs it. Such definitions never share
// cells between granularities (each cell has lo == hi), so an ext is never split.
type cellExt struct {
	lastEvt int64
	latest  []expr.Value
	// sets has the members of BaseSet positions (nil elsewhere); nil without sets.
	sets []Set
	// more are the words of bases past inlineWords, moreNull their null flags.
	more     []uint64
	moreNull []bool
}

func word(c *cell, x *cellExt, i int) *uint64 {
	if i < inlineWords {
		return &c.w[i]
	}
	return &x.more[i-inlineWords]
}

func isNull(c *cell, x *cellExt, i int) bool {
	if i < inlineWords {
		return c.meta&(1<<(8+i)) != 0
	}
	return x.moreNull[i-inlineWords]
}

func setNull(c *cell, x *cellExt, i int, null bool) {
	if i < inlineWords {
		if null {
			c.meta |= 1 << (8 + i)
		} else {
			c.meta &^= 1 << (8 + i)
		}
		return
	}
	x.moreNull[i-inlineWords] = null
}

func lastEvt(x *cellExt) int64 {
	if x == nil {
		return noEventTime
	}
	return x.lastEvt
}

// noEventTime is a row's LastEventTimestamp before any event with latest values.
const noEventTime = -1 << 63

// isFloat reports whether a column of type t holds a float64 word.
func isFloat(t siddhiql.Type) bool { return t == siddhiql.TypeFloat || t == siddhiql.TypeDouble }

// baseValue is base column i of a cell as a Value of the column's type (null for a set
// position and for an empty min or max), as a Row holds it.
func (d *Def) baseValue(c *cell, x *cellExt, i int) expr.Value {
	b := d.Bases[i]
	if b.Kind == BaseSet || isNull(c, x, i) {
		return expr.Value{}
	}
	w := *word(c, x, i)
	if isFloat(b.Type) {
		return expr.Value{T: b.Type, F: math.Float64frombits(w)}
	}
	return expr.Value{T: b.Type, I: int64(w)}
}

// setBase stores v (of the column's type, or null) as base column i of a cell.
func (d *Def) setBase(c *cell, x *cellExt, i int, v expr.Value) {
	if v.IsNull() {
		*word(c, x, i) = 0
		setNull(c, x, i, true)
		return
	}
	setNull(c, x, i, false)
	if isFloat(d.Bases[i].Type) {
		*word(c, x, i) = math.Float64bits(v.AsFloat())
	} else {
		*word(c, x, i) = uint64(v.I)
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

// newCell returns an empty cell for granularities lo..hi with lo's buckets arr and evb: sums
// and counts zero, mins and maxes null, sets empty. The ext is nil unless d needs one.
func (d *Def) newCell(lo, hi int, arr, evb int64) (cell, *cellExt) {
	c := cell{agg: arr, evt: evb}
	c.setSpan(lo, hi)
	var x *cellExt
	if d.needsExt() {
		x = &cellExt{lastEvt: noEventTime}
		if len(d.Latest) > 0 {
			x.latest = make([]expr.Value, len(d.Latest))
		}
		if n := len(d.Bases) - inlineWords; n > 0 {
			x.more, x.moreNull = make([]uint64, n), make([]bool, n)
		}
	}
	for i, b := range d.Bases {
		switch b.Kind {
		case BaseMin, BaseMax:
			setNull(&c, x, i, true)
		case BaseSet:
			if x.sets == nil {
				x.sets = make([]Set, len(d.Bases))
			}
			x.sets[i] = Set{}
		}
	}
	return c, x
}

// rowSlab hands out Rows and their bases from chunks: a flush of a million changed rows
// makes a few thousand allocations instead of two million.
type rowSlab struct {
	rows []Row
	vals []expr.Value
}

const rowSlabLen = 128

// next is a zero Row.
func (s *rowSlab) next() *Row {
	if len(s.rows) == 0 {
		s.rows = make([]Row, rowSlabLen)
	}
	r := &s.rows[0]
	s.rows = s.rows[1:]
	return r
}

// values is n zero values (full: appending to them copies).
func (s *rowSlab) values(n int) []expr.Value {
	if len(s.vals) < n {
		s.vals = make([]expr.Value, max(n, rowSlabLen*inlineWords))
	}
	v := s.vals[:n:n]
	s.vals = s.vals[n:]
	return v
}

// bases is a cell's base columns as a Row holds them, from slab.
func (d *Def) bases(slab *rowSlab, c *cell, x *cellExt) []expr.Value {
	b := slab.values(len(d.Bases))
	for i := range b {
		b[i] = d.baseValue(c, x, i)
	}
	return b
}

// row returns a row of a cell of group g (key key) with buckets agg and evt and the cell's
// bases, as a new Row from slab. The Row shares g's group values and the cell's sets with
// the state, and bases with the other rows of the cell (callers must not change them); the
// rest is its own.
func (d *Def) row(slab *rowSlab, key string, g *group, c *cell, x *cellExt, agg, evt int64, bases []expr.Value) *Row {
	r := slab.next()
	r.AggTimestamp, r.EventTimestamp, r.Index = agg, evt, c.index()
	r.Group, r.key = g.values, key
	r.LastEventTimestamp = lastEvt(x)
	r.Bases = bases
	if x != nil {
		if x.latest != nil {
			r.Latest = slices.Clone(x.latest)
		}
		r.Sets = x.sets
	}
	return r
}

// group holds one group's cells. For every granularity, the cells that cover it are in the
// order their rows were created (oldest first), which is the order Encode writes them in.
// The group, its first group-by value and its first cell are one allocation.
type group struct {
	values []expr.Value
	cells  []cell
	// exts parallels cells when the definition needs exts, else nil.
	exts []*cellExt
	v1   [1]expr.Value
	c1   [1]cell
}

// newGroup returns a group with room for n group-by values and no cells. A group whose
// cells cannot be shared starts with room for one per granularity (nd), what it holds most
// of the time; one whose cells can, with room for one.
func newGroup(n int, exts bool, nd int, shares bool) *group {
	g := &group{}
	if shares {
		g.cells = g.c1[:0:1]
	} else {
		g.cells = make([]cell, 0, nd)
	}
	if n == 1 {
		g.values = g.v1[:]
	} else {
		g.values = make([]expr.Value, n)
	}
	if exts {
		g.exts = make([]*cellExt, 0, 1)
	}
	return g
}

// ext is the ext of cell j, nil without exts.
func (g *group) ext(j int) *cellExt {
	if g.exts == nil {
		return nil
	}
	return g.exts[j]
}

// setCells replaces the group's cells (and exts) with copies of cells (and exts), giving
// back room a burst of cells left.
func (g *group) setCells(cells []cell, exts []*cellExt) {
	switch {
	case len(cells) <= 1:
		g.cells = append(g.c1[:0:1], cells...)
	case cap(g.cells) >= len(cells) && len(cells) > cap(g.cells)/4:
		g.cells = append(g.cells[:0], cells...)
	default:
		g.cells = append(make([]cell, 0, len(cells)), cells...)
	}
	if g.exts != nil {
		clear(g.exts[len(exts):cap(g.exts)])
		if len(exts) > cap(g.exts)/4 {
			g.exts = append(g.exts[:0], exts...)
		} else {
			g.exts = append(make([]*cellExt, 0, max(1, len(exts))), exts...)
		}
	}
}

// targets are the buckets one event goes to, per granularity, with their ends.
type targets struct {
	arr, arrEnd, evt, evtEnd [maxDurations]int64
}

// logical is granularity k's buckets of cell c.
func (s *State) logical(c *cell, k int) (agg, evt int64) {
	if c.lo() == k {
		return c.agg, c.evt
	}
	d := s.def.Durations[k]
	agg = s.clock.Start(c.agg, d)
	if !s.def.EventTime {
		return agg, agg
	}
	return agg, s.clock.Start(c.evt, d)
}

// startMemo caches Clock.Start per granularity for the read paths, where many cells share
// their buckets (every key that arrived in one second).
type startMemo struct {
	s            *State
	aggIn, aggTo [maxDurations]int64
	evtIn, evtTo [maxDurations]int64
	aggOK, evtOK [maxDurations]bool
}

// logical is State.logical through the cache.
func (m *startMemo) logical(c *cell, k int) (agg, evt int64) {
	if c.lo() == k {
		return c.agg, c.evt
	}
	d := m.s.def.Durations[k]
	if !m.aggOK[k] || m.aggIn[k] != c.agg {
		m.aggIn[k], m.aggTo[k], m.aggOK[k] = c.agg, m.s.clock.Start(c.agg, d), true
	}
	if !m.s.def.EventTime {
		return m.aggTo[k], m.aggTo[k]
	}
	if !m.evtOK[k] || m.evtIn[k] != c.evt {
		m.evtIn[k], m.evtTo[k], m.evtOK[k] = c.evt, m.s.clock.Start(c.evt, d), true
	}
	return m.aggTo[k], m.evtTo[k]
}

// find is the position in g.cells of the cell that holds granularity k's row for the
// buckets t, or -1. With nested set, every bucket of t starts at or after 1970 in a clock
// whose buckets nest, so a shared cell's row at k is t's when its own buckets lie in t's.
func (s *State) find(g *group, k int, t *targets, nested bool) int {
	for j := len(g.cells) - 1; j >= 0; j-- {
		c := &g.cells[j]
		lo := c.lo()
		if lo > k || c.hi() < k {
			continue
		}
		if lo == k {
			if c.agg == t.arr[k] && c.evt == t.evt[k] {
				return j
			}
			continue
		}
		if nested {
			if c.agg >= t.arr[k] && c.agg < t.arrEnd[k] && c.evt >= t.evt[k] && c.evt < t.evtEnd[k] {
				return j
			}
		} else if a, e := s.logical(c, k); a == t.arr[k] && e == t.evt[k] {
			return j
		}
	}
	return -1
}

// addEvent folds event ev (event time et) into the row of every granularity of g for the
// buckets t, at log index index. A nested event (see find) that reaches a shared cell at
// granularity k reaches it at every coarser granularity it covers too: the cell splits only
// where the event leaves finer rows behind. Granularities without a row get new cells, one
// for each run of them that may share.
func (s *State) addEvent(g *group, t *targets, nested bool, ev expr.Row, et int64, index uint64) {
	d := s.def
	nd := len(d.Durations)
	for k := 0; k < nd; {
		j := s.find(g, k, t, nested)
		if j < 0 {
			hi := k
			for nested && hi+1 < nd && s.share[hi] && s.find(g, hi+1, t, nested) < 0 {
				hi++
			}
			c, x := d.newCell(k, hi, t.arr[k], t.evt[k])
			g.cells = append(g.cells, c)
			if g.exts != nil {
				g.exts = append(g.exts, x)
			}
			s.update(&g.cells[len(g.cells)-1], x, ev, et, index)
			k = hi + 1
			continue
		}
		top := g.cells[j].hi()
		if !nested {
			top = k
		}
		if c := &g.cells[j]; c.lo() < k || top < c.hi() {
			j = s.split(g, j, k, top, t)
		}
		s.update(&g.cells[j], g.ext(j), ev, et, index)
		k = top + 1
	}
}

// split cuts cell j of g, which covers a..b and holds the rows of t there, into the cells
// for granularities below a, a..b and above b (those that are not empty), in that order at
// j. It returns the position of the a..b cell.
func (s *State) split(g *group, j, a, b int, t *targets) int {
	if g.exts != nil {
		panic("agg: split of a cell with an ext") // such cells never span granularities
	}
	c := g.cells[j]
	lo, hi := c.lo(), c.hi()
	var buf [3]cell
	pieces := buf[:0]
	if lo < a {
		p := c
		p.setSpan(lo, a-1)
		pieces = append(pieces, p)
	}
	at := j + len(pieces)
	mid := c
	mid.agg, mid.evt = t.arr[a], t.evt[a]
	mid.setSpan(a, b)
	pieces = append(pieces, mid)
	if b < hi {
		p := c
		p.agg, p.evt = s.logical(&c, b+1)
		p.setSpan(b+1, hi)
		pieces = append(pieces, p)
	}
	g.cells = slices.Replace(g.cells, j, j+1, pieces...)
	return at
}

// drop drops the rows for which gone (cell, granularity) reports true, and returns how many.
func (s *State) drop(gone func(c *cell, k int) bool) int {
	n := 0
	for key, g := range s.groups {
		n += s.dropIn(key, g, gone)
	}
	return n
}

// dropIn is drop for group g (key key, or "": computed when needed), which it deletes when
// no row is left.
func (s *State) dropIn(key string, g *group, gone func(c *cell, k int) bool) int {
	n := 0
	out, outExt := s.scratch[:0], s.scratchExt[:0]
	touched := false
	for j := range g.cells {
		c := &g.cells[j]
		lo, hi := c.lo(), c.hi()
		run, pieces := -1, 0
		for k := lo; k <= hi; k++ {
			if !gone(c, k) {
				if run < 0 {
					run = k
				}
				continue
			}
			n++
			if c.index() > s.mark {
				s.pending-- // an unflushed row purged
			}
			if !touched {
				touched = true
				out = append(out, g.cells[:j]...)
				if g.exts != nil {
					outExt = append(outExt, g.exts[:j]...)
				}
			}
			if run >= 0 {
				out = append(out, s.piece(*c, run, k-1))
				pieces++
				run = -1
			}
		}
		if !touched {
			continue
		}
		if run >= 0 {
			out = append(out, s.piece(*c, run, hi))
			pieces++
		}
		if g.exts != nil && pieces > 0 {
			outExt = append(outExt, g.exts[j]) // lo == hi: one piece at most
		}
	}
	if !touched {
		return n
	}
	if len(out) == 0 {
		if key == "" {
			key = s.keyOf(g)
		}
		delete(s.groups, key)
		g.cells = g.cells[:0] // a remembered change of it finds nothing (dropfast.go)
	} else {
		g.setCells(out, outExt)
	}
	clear(outExt)
	s.scratch, s.scratchExt = out[:0], outExt[:0]
	return n
}

// piece is the part of cell c for granularities a..b.
func (s *State) piece(c cell, a, b int) cell {
	if a != c.lo() {
		c.agg, c.evt = s.logical(&c, a)
	}
	c.setSpan(a, b)
	return c
}

// mergeable reports whether cell b, granularity k+1's newest row, holds the same values as
// cell a, which covers granularity k, and has the buckets a would give it at k+1: then one
// cell can stand for both (Decode shares cells as Add would have).
func (s *State) mergeable(a, b *cell, k int) bool {
	if !s.share[k] || a.hi() != k || b.lo() != k+1 || b.hi() != k+1 || a.agg < 0 || a.evt < 0 {
		return false
	}
	if a.meta>>8 != b.meta>>8 || a.w != b.w {
		return false
	}
	agg, evt := s.logical(a, k+1)
	return agg == b.agg && evt == b.evt
}
