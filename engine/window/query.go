package window

import (
	"errors"
	"fmt"
	"slices"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// stateVersion is the first byte of an encoded state.
const stateVersion = 1

// ErrState is returned (wrapped) by Decode for a state that does not fit the query.
var ErrState = errors.New("window: bad state")

// tick moves the clock forward to t (never back) and returns the clock.
func (q *Query) tick(t int64) int64 {
	if !q.started || t > q.clock {
		q.clock, q.started = t, true
	}
	return q.clock
}

// Process feeds events that arrived together at stamped time now (ms). Each row must
// have the input stream's attributes in order (Process panics otherwise: a caller bug);
// the query keeps no row of events (windows copy what they hold), so the caller may reuse
// them. Timers due at or before now fire first (Advance), then the events pass the filter
// and enter the window. Outputs are passed to emit in a deterministic order; emit must not
// call back into the query. A now below the query's clock is taken as the clock.
func (q *Query) Process(now int64, events []expr.Row, emit func(Output)) {
	now = q.tick(now)
	if q.lim != nil {
		q.lim.anchor(now)
		defer q.lim.due(now, emit)
	}
	out := q.sink(emit)
	q.win.advance(now, out)
	q.eventTime(now)
	for _, r := range events {
		if len(r) != q.nIn {
			panic(fmt.Sprintf("window: event has %d values, stream has %d attributes", len(r), q.nIn))
		}
	}
	rows := events
	if q.filter != nil {
		rows = q.passed[:0]
		for _, r := range events {
			if q.filter(r).Truth() {
				rows = append(rows, r)
			}
		}
	}
	if len(rows) > 0 {
		q.win.add(now, rows, out)
	}
	if q.filter != nil {
		clear(rows)
		q.passed = rows[:0]
		if cap(rows) < keepScratch {
			q.passed = nil
		}
	}
}

// Advance moves the query's clock to now with no new events: time windows expire,
// timeBatch windows flush and externalTimeBatch timeouts fire, in due-time order.
func (q *Query) Advance(now int64, emit func(Output)) {
	now = q.tick(now)
	if q.lim != nil {
		q.lim.anchor(now)
		defer q.lim.due(now, emit)
	}
	q.win.advance(now, q.sink(emit))
}

// eventTime tells the functions the time of the event they are about to evaluate.
func (q *Query) eventTime(t int64) {
	if q.env != nil {
		q.env.EventTime = t
	}
}

func (q *Query) sink(emit func(Output)) sink {
	return func(items []item, batch bool) { q.selectChunk(items, batch, emit) }
}

// group returns the group of row's group-by key, creating it (the one group without group
// by). The key is built in scratch space: only a new group allocates its key.
func (q *Query) group(row expr.Row) *group {
	b := q.keyBuf[:0]
	for _, i := range q.groupBy {
		b = row[i].Key(b)
	}
	q.keyBuf = b
	g := q.groups[string(b)]
	if g == nil {
		g = &group{key: string(b), aggs: make([]aggState, len(q.aggs))}
		q.groups[g.key] = g
	}
	return g
}

// apply updates g's aggregates with one item and returns the full row (input, output,
// aggregate slots) and whether it passes the having condition. The full row is the
// query's scratch space, valid until the next apply.
func (q *Query) apply(it item, g *group) (expr.Row, bool) {
	sign := int64(1)
	if it.kind == itExpired {
		sign = -1
	}
	g.events += sign
	q.eventTime(it.time)
	for i := range q.aggs {
		q.aggs[i].update(&g.aggs[i], it.row, sign)
	}
	full := q.full
	if full == nil {
		full = make(expr.Row, q.aggBase()+len(q.aggs))
		q.full = full // until the chunk ends
	}
	copy(full, it.row)
	for i := range q.aggs {
		full[q.aggBase()+i] = q.aggs[i].value(&g.aggs[i])
	}
	if g.events <= 0 {
		delete(q.groups, g.key) // an empty group is the same as a fresh one
	}
	for i, ev := range q.sel {
		full[q.outBase()+i] = ev(full)
	}
	return full, q.having == nil || q.having(full).Truth()
}

func (q *Query) wanted(k itemKind) bool {
	return (k == itCurrent && q.currentOn) || (k == itExpired && q.expiredOn)
}

func outKind(k itemKind) Kind {
	if k == itExpired {
		return Expired
	}
	return Current
}

// outSlab hands out the output rows of one chunk from slabs: one allocation for all the
// rows of a chunk (or of what is left of it), not one per row. The rows are capped, so no
// append to one reaches the next.
type outSlab struct {
	width int
	free  []expr.Value
}

// row copies vals into the slab; left is how many more rows the chunk may ask for, this
// one included.
func (s *outSlab) row(vals expr.Row, left int) expr.Row {
	w := s.width
	if len(s.free) < w {
		s.free = make([]expr.Value, left*w)
	}
	r := s.free[:w:w]
	copy(r, vals)
	s.free = s.free[w:]
	return r
}

// pending is an output of a batch chunk held until the chunk ends: its values are at off
// in the query's outVals.
type pending struct {
	kind itemKind
	time int64
	key  string
	off  int
}

// selectChunk runs the selector over one window chunk (Siddhi's QuerySelector).
func (q *Query) selectChunk(items []item, batch bool, emit func(Output)) {
	if q.postFilter != nil {
		kept := items[:0:0]
		for _, it := range items {
			q.eventTime(it.time)
			if it.kind == itReset || q.postFilter(it.row).Truth() {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	if q.lim != nil && q.lim.kind == siddhiql.RateSnapshot {
		batch = false // a snapshot sees every event, as Siddhi turns batching off for it
	}
	defer func() { q.full = nil }() // one per chunk: an idle query keeps none
	grouped := batch && len(q.groupBy) > 0
	lastOnly := batch && !grouped && q.hasAgg
	if grouped || lastOnly {
		q.selectBatch(items, grouped, emit)
		return
	}
	// One output per event, sent as it is selected. left counts the items still to come
	// that could give an output, so the slab is as large as the outputs can be.
	left := 0
	for _, it := range items {
		if q.wanted(it.kind) {
			left++
		}
	}
	slab := outSlab{width: len(q.outAttrs)}
	for _, it := range items {
		if it.kind == itReset {
			q.reset(it.time, emit)
			continue
		}
		g := q.group(it.row)
		full, pass := q.apply(it, g)
		if !q.wanted(it.kind) {
			continue
		}
		if !pass {
			left--
			continue
		}
		o := Output{Kind: outKind(it.kind), Time: it.time, Row: slab.row(full[q.outBase():q.aggBase()], left)}
		left--
		if q.lim != nil {
			q.lim.offer(o, g.key, emit)
		} else {
			emit(o)
		}
	}
}

// reset forgets the groups' aggregates when a window resets (a batch window's flush) and
// lets the rate limiter see it.
func (q *Query) reset(time int64, emit func(Output)) {
	clear(q.groups)
	if q.lim != nil {
		q.lim.windowReset(time, emit)
	}
}

// selectBatch is selectChunk for a batch chunk reduced to one output per group key
// (grouped) or to its last output: the outputs are sent when the chunk ends, from one slab.
func (q *Query) selectBatch(items []item, grouped bool, emit func(Output)) {
	var byKey map[string]int
	pend := q.pend[:0]
	vals := q.outVals[:0]
	w := len(q.outAttrs)
	for _, it := range items {
		if it.kind == itReset {
			q.reset(it.time, emit)
			continue
		}
		g := q.group(it.row)
		full, pass := q.apply(it, g)
		if !pass || !q.wanted(it.kind) {
			continue
		}
		p := pending{kind: it.kind, time: it.time, key: g.key}
		i := -1
		switch {
		case !grouped:
			if len(pend) > 0 {
				i = 0
			}
		case byKey == nil:
			byKey = map[string]int{}
		default:
			if j, ok := byKey[g.key]; ok {
				i = j // LinkedHashMap.put: keeps the key's first position
			}
		}
		if i < 0 {
			i = len(pend)
			p.off = len(vals)
			vals = append(vals, full[q.outBase():q.aggBase()]...)
			pend = append(pend, p)
			if grouped {
				byKey[g.key] = i
			}
		} else {
			p.off = pend[i].off
			copy(vals[p.off:p.off+w], full[q.outBase():q.aggBase()])
			pend[i] = p
		}
	}
	slab := outSlab{width: w}
	for i, p := range pend {
		o := Output{Kind: outKind(p.kind), Time: p.time, Row: slab.row(vals[p.off:p.off+w], len(pend)-i)}
		if q.lim != nil {
			q.lim.offer(o, p.key, emit)
		} else {
			emit(o)
		}
	}
	clear(pend)
	clear(vals)
	q.pend, q.outVals = pend[:0], vals[:0]
	if cap(pend) < keepScratch {
		q.pend, q.outVals = nil, nil
	}
}

// Encode appends the query's runtime state (clock, window contents, aggregates) to w.
// The encoding is deterministic: group keys and multisets are written in sorted order.
func (q *Query) Encode(w *wire.Writer) {
	w.Byte(stateVersion)
	w.Bool(q.started)
	w.Varint(q.clock)
	q.win.encode(w)
	keys := make([]string, 0, len(q.groups))
	for k := range q.groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.Uvarint(uint64(len(keys)))
	for _, k := range keys {
		g := q.groups[k]
		w.String(k)
		w.Varint(g.events)
		for i := range g.aggs {
			g.aggs[i].encode(w)
		}
	}
	if q.lim != nil { // only queries with an output clause, which older states never had
		q.lim.encode(w)
	}
}

// Decode replaces the query's runtime state with one written by Encode of a query
// compiled from the same text. On error the query's state is unspecified; errors wrap
// ErrState or the reader's error.
func (q *Query) Decode(r *wire.Reader) error {
	if v := r.Byte(); r.Err() == nil && v != stateVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrState, v, stateVersion)
	}
	q.started = r.Bool()
	q.clock = r.Varint()
	q.win.decode(r, q.nIn)
	n := r.Count(2)
	q.groups = make(map[string]*group, n)
	for range n {
		k := r.String()
		g := &group{key: k, events: r.Varint(), aggs: make([]aggState, len(q.aggs))}
		for i := range g.aggs {
			g.aggs[i].decode(r)
		}
		if r.Err() != nil {
			break
		}
		q.groups[k] = g
	}
	if q.lim != nil {
		q.lim.decode(r, len(q.outAttrs))
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	return nil
}
