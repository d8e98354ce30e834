package window

import (
	"fmt"
	"maps"
	"slices"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// maxCatchUp bounds how many snapshot periods one call re-emits when the clock jumps over
// many of them at once; past it the schedule skips ahead to the last period due.
const maxCatchUp = 1000

// snapMode is how `output snapshot every T` keeps its snapshot, chosen from the query's
// shape as Siddhi chooses its snapshot limiter.
type snapMode uint8

const (
	// snapLast keeps the last current event (no window; or a window whose outputs are all
	// aggregates, without group by: an expired event empties it).
	snapLast snapMode = iota
	// snapPerKey keeps the last event per group key (no window with group by; or a window
	// whose outputs are all aggregates, with group by: a key leaves when its events have).
	snapPerKey
	// snapList keeps the events live in the window (a window, no aggregates).
	snapList
	// snapListAgg keeps the events live in the window and the latest aggregate values per
	// group key (a window, some outputs aggregates).
	snapListAgg
)

// held is an output kept by a limiter, with its group key ("" without group by).
type held struct {
	key string
	o   Output
}

// limiter is a query's output rate limit. It sits between the selector and the query's
// output and follows Siddhi's rate limiters:
//
//   - all every N events: outputs are held until the N-th, then all are released.
//   - first every N events: the first of every N outputs (with group by: the first of
//     every N outputs of each key).
//   - last every N events: the N-th output of every N (with group by: at every N-th
//     output, the last output of each key seen since the previous release).
//   - all every T: outputs are held and released at each period end.
//   - first every T: an output passes when none passed in the T before it (per key with
//     group by); there is no timer.
//   - last every T: at each period end, the last output (per key with group by).
//   - snapshot every T: at each period end, the current snapshot (see snapMode).
//
// Periods end at the multiples of T since the Unix epoch (a minute's end for `every 1 min`),
// not T after the app started as Siddhi's are: the same on every replica and in every
// partition group, whenever the deploy was applied. A period end fires from the stamped
// time of a later call: before an output stamped at or after it, or at the end of the
// call. Released outputs keep their own time.
type limiter struct {
	kind    siddhiql.RateKind
	events  int64 // N of `every N events`; 0 for time-based limits
	period  int64 // T in ms; 0 for event-count limits
	grouped bool
	snap    snapMode
	aggPos  []int // output positions that hold aggregates (snapListAgg)

	// state
	anchored bool
	next     int64 // the next period end (time-based all and last, snapshot)
	counter  int64
	held     []held
	index    map[string]int      // key → position in held (last with group by, snapPerKey)
	counts   map[string]int64    // first every N with group by: outputs in the key's run; snapPerKey: live events per key
	sent     map[string]int64    // first every T: time of the key's last output
	aggVals  map[string]expr.Row // snapListAgg: latest aggregate values per key
}

// newLimiter builds the limiter of r for a query with or without a window, a group by, and
// whose outputs at aggPos (of nOut) are aggregates.
func newLimiter(r *siddhiql.OutputRate, windowed, grouped bool, aggPos []int, nOut int) *limiter {
	l := &limiter{kind: r.Kind, events: r.Events, period: r.Millis, grouped: grouped, aggPos: aggPos}
	l.reset()
	if r.Kind != siddhiql.RateSnapshot {
		return l
	}
	switch {
	case !windowed && !grouped:
		l.snap = snapLast
	case !windowed:
		l.snap = snapPerKey
	case len(aggPos) == 0:
		l.snap = snapList
	case len(aggPos) == nOut && !grouped:
		l.snap = snapLast
	case len(aggPos) == nOut:
		l.snap = snapPerKey
	default:
		l.snap = snapListAgg
	}
	return l
}

func (l *limiter) reset() {
	l.held = nil
	l.index = map[string]int{}
	l.counts = map[string]int64{}
	l.sent = map[string]int64{}
	l.aggVals = map[string]expr.Row{}
}

// timed reports whether the limiter releases at period ends.
func (l *limiter) timed() bool { return l.period > 0 && l.kind != siddhiql.RateFirst }

// anchor starts the schedule at t, the query's first stamped time: the first period end
// is the first multiple of the period (since the Unix epoch) after t.
func (l *limiter) anchor(t int64) {
	if !l.anchored && l.period > 0 {
		q := t / l.period
		if t < 0 && t%l.period != 0 {
			q-- // floor
		}
		l.anchored, l.next = true, (q+1)*l.period
	}
}

// due fires every period end at or before t.
func (l *limiter) due(t int64, emit func(Output)) {
	if !l.timed() || !l.anchored {
		return
	}
	for n := 0; l.next <= t; n++ {
		if n > 0 && (l.kind != siddhiql.RateSnapshot || len(l.held) == 0 || n >= maxCatchUp) {
			// Nothing more to release (or enough repeats of one snapshot): skip the
			// remaining period ends, so a long gap costs no loop.
			l.next += ((t-l.next)/l.period + 1) * l.period
			return
		}
		l.fire(emit)
		l.next += l.period
	}
}

// fire releases what a period end releases.
func (l *limiter) fire(emit func(Output)) {
	if l.kind != siddhiql.RateSnapshot {
		for _, h := range l.held {
			emit(h.o)
		}
		l.held = nil
		clear(l.index)
		return
	}
	switch l.snap {
	case snapLast, snapList:
		for _, h := range l.held {
			emit(snapCopy(h.o, nil, nil))
		}
	case snapPerKey:
		kept := l.held[:0]
		for _, h := range l.held {
			if l.counts[h.key] <= 0 {
				delete(l.counts, h.key)
				continue
			}
			emit(snapCopy(h.o, nil, nil))
			kept = append(kept, h)
		}
		l.held = kept
		l.reindex()
	case snapListAgg:
		done := map[string]bool{}
		for _, h := range l.held {
			if l.grouped {
				if done[h.key] {
					continue
				}
				done[h.key] = true
			}
			emit(snapCopy(h.o, l.aggPos, l.aggVals[h.key]))
		}
	}
}

// snapCopy is a current copy of o, with the values at aggPos replaced by vals.
func snapCopy(o Output, aggPos []int, vals expr.Row) Output {
	c := Output{Kind: Current, Time: o.Time, Row: slices.Clone(o.Row)}
	for i, p := range aggPos {
		if i < len(vals) {
			c.Row[p] = vals[i]
		}
	}
	return c
}

func (l *limiter) reindex() {
	clear(l.index)
	for i, h := range l.held {
		l.index[h.key] = i
	}
}

// offer takes one output of the selector, of group key key.
func (l *limiter) offer(o Output, key string, emit func(Output)) {
	l.due(o.Time, emit)
	if l.kind != siddhiql.RateFirst {
		// It may be held for long: a row of its own, not one that keeps its chunk's slab.
		o.Row = slices.Clone(o.Row)
	}
	if !l.grouped {
		key = ""
	}
	switch {
	case l.kind == siddhiql.RateSnapshot:
		l.offerSnapshot(o, key)
	case l.events > 0:
		l.offerCount(o, key, emit)
	case l.kind == siddhiql.RateFirst:
		if last, ok := l.sent[key]; !ok || last+l.period <= o.Time {
			l.sent[key] = o.Time
			emit(o)
		}
	case l.kind == siddhiql.RateLast && l.grouped:
		l.put(key, o)
	case l.kind == siddhiql.RateLast:
		l.held = append(l.held[:0], held{o: o})
	default: // all every T
		l.held = append(l.held, held{key: key, o: o})
	}
}

// put keeps o as the output of key, in the key's first position (an insertion-ordered map).
func (l *limiter) put(key string, o Output) {
	if i, ok := l.index[key]; ok {
		l.held[i].o = o
		return
	}
	l.index[key] = len(l.held)
	l.held = append(l.held, held{key: key, o: o})
}

func (l *limiter) offerCount(o Output, key string, emit func(Output)) {
	switch l.kind {
	case siddhiql.RateFirst:
		if l.grouped {
			n := l.counts[key] + 1
			if n == 1 {
				emit(o)
			}
			if n >= l.events {
				delete(l.counts, key)
			} else {
				l.counts[key] = n
			}
			return
		}
		l.counter++
		if l.counter == 1 {
			emit(o)
		}
		if l.counter >= l.events {
			l.counter = 0
		}
	case siddhiql.RateLast:
		l.counter++
		if l.grouped {
			l.put(key, o)
		} else {
			l.held = append(l.held[:0], held{o: o})
		}
		if l.counter >= l.events {
			l.counter = 0
			l.fire(emit)
		}
	default: // all
		l.counter++
		l.held = append(l.held, held{key: key, o: o})
		if l.counter >= l.events {
			l.counter = 0
			l.fire(emit)
		}
	}
}

func (l *limiter) offerSnapshot(o Output, key string) {
	cur := o.Kind == Current
	switch l.snap {
	case snapLast:
		if cur {
			l.held = append(l.held[:0], held{o: o})
		} else {
			l.held = nil
		}
	case snapPerKey:
		l.put(key, o)
		if cur {
			l.counts[key]++
		} else {
			l.counts[key]--
		}
	case snapList:
		if cur {
			l.held = append(l.held, held{key: key, o: o})
		} else if i := l.match(o, nil); i >= 0 {
			l.held = slices.Delete(l.held, i, i+1)
		}
	case snapListAgg:
		vals := make(expr.Row, len(l.aggPos))
		for i, p := range l.aggPos {
			vals[i] = o.Row[p]
		}
		if cur {
			l.held = append(l.held, held{key: key, o: o})
			l.aggVals[key] = vals
		} else if i := l.match(o, l.aggPos); i >= 0 {
			l.held = slices.Delete(l.held, i, i+1)
			l.aggVals[key] = vals
		}
	}
}

// match finds the first held output equal to o outside the positions skip.
func (l *limiter) match(o Output, skip []int) int {
	for i, h := range l.held {
		if sameRow(h.o.Row, o.Row, skip) {
			return i
		}
	}
	return -1
}

func sameRow(a, b expr.Row, skip []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if slices.Contains(skip, i) {
			continue
		}
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// windowReset is Siddhi's RESET event reaching the limiter: a batch window emptied, so a
// snapshot of a windowed query empties too.
func (l *limiter) windowReset(t int64, emit func(Output)) {
	l.due(t, emit)
	if l.kind == siddhiql.RateSnapshot {
		l.held = nil
		clear(l.index)
		clear(l.counts)
		clear(l.aggVals)
	}
}

// encode appends the limiter's state, maps in sorted key order.
func (l *limiter) encode(w *wire.Writer) {
	w.Bool(l.anchored)
	w.Varint(l.next)
	w.Varint(l.counter)
	w.Uvarint(uint64(len(l.held)))
	for _, h := range l.held {
		w.String(h.key)
		w.Byte(byte(h.o.Kind))
		w.Varint(h.o.Time)
		encodeRow(w, h.o.Row)
	}
	for _, m := range []map[string]int64{l.counts, l.sent} {
		keys := slices.Sorted(maps.Keys(m))
		w.Uvarint(uint64(len(keys)))
		for _, k := range keys {
			w.String(k)
			w.Varint(m[k])
		}
	}
	keys := slices.Sorted(maps.Keys(l.aggVals))
	w.Uvarint(uint64(len(keys)))
	for _, k := range keys {
		w.String(k)
		encodeRow(w, l.aggVals[k])
	}
}

func encodeRow(w *wire.Writer, row expr.Row) {
	w.Uvarint(uint64(len(row)))
	for _, v := range row {
		v.Encode(w)
	}
}

func decodeRow(r *wire.Reader, width int) expr.Row {
	n := r.Count(1)
	if r.Err() == nil && n != width {
		r.Fail(fmt.Errorf("%w: rate limiter row has %d values, want %d", ErrState, n, width))
	}
	if r.Err() != nil {
		return nil
	}
	row := make(expr.Row, n)
	for i := range row {
		row[i] = expr.DecodeValue(r)
	}
	return row
}

// decode replaces the limiter's state with one written by encode; width is the number of
// output attributes.
func (l *limiter) decode(r *wire.Reader, width int) {
	l.reset()
	l.anchored = r.Bool()
	l.next = r.Varint()
	l.counter = r.Varint()
	n := r.Count(4)
	for range n {
		h := held{key: r.String()}
		h.o.Kind = Kind(r.Byte())
		h.o.Time = r.Varint()
		h.o.Row = decodeRow(r, width)
		if r.Err() != nil {
			return
		}
		l.held = append(l.held, h)
	}
	for _, m := range []map[string]int64{l.counts, l.sent} {
		n := r.Count(2)
		for range n {
			k := r.String()
			m[k] = r.Varint()
		}
	}
	n = r.Count(2)
	for range n {
		k := r.String()
		l.aggVals[k] = decodeRow(r, len(l.aggPos))
	}
	if l.kind == siddhiql.RateLast || l.snap == snapPerKey {
		l.reindex()
	}
}
