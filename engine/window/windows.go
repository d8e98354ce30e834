package window

import (
	"fmt"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
)

type itemKind uint8

const (
	itCurrent itemKind = iota
	itExpired
	itReset // clears every group's aggregates (Siddhi's RESET event)
)

// item is one event a window hands to the selector.
type item struct {
	kind itemKind
	time int64
	row  expr.Row
}

// sink receives one chunk of window output. batch is true for the chunks of batch
// windows, which the selector reduces per group key.
type sink func(items []item, batch bool)

// window is the state machine of one window kind.
type window interface {
	// advance fires every timer due at or before now.
	advance(now int64, out sink)
	// add takes events that arrived together at now (already filtered).
	add(now int64, rows []expr.Row, out sink)
	encode(w *wire.Writer)
	decode(r *wire.Reader, width int)
}

// event is an event held in a window: its arrival time and row.
type event struct {
	time int64
	row  expr.Row
}

func encodeEvents(w *wire.Writer, evs []event) {
	w.Uvarint(uint64(len(evs)))
	for _, e := range evs {
		w.Varint(e.time)
		w.Uvarint(uint64(len(e.row)))
		for _, v := range e.row {
			v.Encode(w)
		}
	}
}

func decodeEvents(r *wire.Reader, width int) []event {
	n := r.Count(2)
	var evs []event
	for range n {
		t := r.Varint()
		row := make(expr.Row, width)
		if !decodeEventRow(r, width, row) {
			return nil
		}
		evs = append(evs, event{time: t, row: row})
	}
	return evs
}

// decodeEventRow reads one stored event's values into row (of the stream's width) and reports
// whether it could.
func decodeEventRow(r *wire.Reader, width int, row expr.Row) bool {
	m := r.Count(1)
	if r.Err() == nil && m != width {
		r.Fail(fmt.Errorf("window: stored event has %d values, stream has %d attributes", m, width))
	}
	if r.Err() != nil {
		return false
	}
	for j := range row {
		row[j] = expr.DecodeValue(r)
	}
	return r.Err() == nil
}

// cloneRows copies rows, which the caller may reuse, for a window that keeps them: one
// allocation for all the values and one for the rows.
func cloneRows(rows []expr.Row) []expr.Row {
	n := 0
	for _, r := range rows {
		n += len(r)
	}
	slab := make([]expr.Value, n)
	out := make([]expr.Row, len(rows))
	off := 0
	for i, r := range rows {
		row := slab[off : off+len(r) : off+len(r)]
		copy(row, r)
		out[i] = row
		off += len(r)
	}
	return out
}

func asItems(evs []event, kind itemKind, time int64, keepTime bool) []item {
	out := make([]item, len(evs))
	for i, e := range evs {
		t := time
		if keepTime {
			t = e.time
		}
		out[i] = item{kind: kind, time: t, row: e.row}
	}
	return out
}

// itemBuf is a window's reusable chunk of items: the selector is done with a chunk when
// the sink returns, so the next chunk may use the same space.
type itemBuf struct{ items []item }

func (b *itemBuf) start() []item { return b.items[:0] }

// keepScratch is the fewest rows (or items) of scratch space a window keeps between calls:
// smaller space is made again for each chunk, so the many small windows of a partition's
// instances do not each hold some.
const keepScratch = 64

// done keeps the space of items for the next chunk when it is large, without the rows they
// referred to.
func (b *itemBuf) done(items []item) {
	if cap(items) < keepScratch {
		b.items = nil
		return
	}
	clear(items)
	b.items = items[:0]
}

// noWindow passes every event through as CURRENT.
type noWindow struct{ buf itemBuf }

func (*noWindow) advance(int64, sink) {}
func (nw *noWindow) add(now int64, rows []expr.Row, out sink) {
	items := nw.buf.start()
	for _, r := range rows {
		items = append(items, item{kind: itCurrent, time: now, row: r})
	}
	out(items, false)
	nw.buf.done(items)
}
func (*noWindow) encode(*wire.Writer)      {}
func (*noWindow) decode(*wire.Reader, int) {}

// lengthWindow is length(n): the last n events (LengthWindowProcessor).
type lengthWindow struct {
	n   int
	evs *ring
	buf itemBuf
}

func (*lengthWindow) advance(int64, sink) {}
func (l *lengthWindow) add(now int64, rows []expr.Row, out sink) {
	items := l.buf.start()
	for _, r := range rows {
		if l.evs.len() >= l.n {
			_, old := l.evs.take()
			items = append(items, item{kind: itExpired, time: now, row: old})
		}
		items = append(items, item{kind: itCurrent, time: now, row: r})
		l.evs.push(now, r)
	}
	out(items, false)
	l.buf.done(items)
	l.evs.resetScratch()
}
func (l *lengthWindow) encode(w *wire.Writer)            { l.evs.encode(w) }
func (l *lengthWindow) decode(r *wire.Reader, width int) { l.evs.decode(r, width) }

// timeWindow is time(t): events live in [ts, ts+t) on the stamped clock (TimeWindowProcessor).
type timeWindow struct {
	t   int64
	evs *ring
	buf itemBuf
}

func (tw *timeWindow) advance(now int64, out sink) {
	for tw.evs.len() > 0 && tw.evs.time(0)+tw.t <= now {
		// One chunk per due time, as a punctual scheduler fires once per due time.
		due := tw.evs.time(0) + tw.t
		items := tw.buf.start()
		for tw.evs.len() > 0 && tw.evs.time(0)+tw.t == due {
			_, row := tw.evs.take()
			items = append(items, item{kind: itExpired, time: due, row: row})
		}
		out(items, false)
		tw.buf.done(items)
		tw.evs.resetScratch()
	}
}
func (tw *timeWindow) add(now int64, rows []expr.Row, out sink) {
	items := tw.buf.start()
	for _, r := range rows {
		items = append(items, item{kind: itCurrent, time: now, row: r})
		tw.evs.push(now, r)
	}
	out(items, false)
	tw.buf.done(items)
}
func (tw *timeWindow) encode(w *wire.Writer)            { tw.evs.encode(w) }
func (tw *timeWindow) decode(r *wire.Reader, width int) { tw.evs.decode(r, width) }

// externalTimeWindow is externalTime(attr, t): sliding on an event-time attribute,
// evaluated on arrival only (ExternalTimeWindowProcessor). Events whose timestamp is null
// are dropped: Siddhi would fail on them.
type externalTimeWindow struct {
	attr int
	t    int64
	evs  *ring
	buf  itemBuf
}

func (*externalTimeWindow) advance(int64, sink) {}
func (e *externalTimeWindow) add(now int64, rows []expr.Row, out sink) {
	items := e.buf.start()
	for _, r := range rows {
		ts := r[e.attr]
		if ts.IsNull() {
			continue
		}
		for e.evs.len() > 0 && e.evs.value(0, e.attr).I-ts.I+e.t <= 0 {
			_, old := e.evs.take()
			items = append(items, item{kind: itExpired, time: ts.I, row: old})
		}
		items = append(items, item{kind: itCurrent, time: now, row: r})
		e.evs.push(now, r)
	}
	out(items, false)
	e.buf.done(items)
	e.evs.resetScratch()
}
func (e *externalTimeWindow) encode(w *wire.Writer)            { e.evs.encode(w) }
func (e *externalTimeWindow) decode(r *wire.Reader, width int) { e.evs.decode(r, width) }

// lengthBatchWindow is lengthBatch(n[, stream.current.event]) (LengthBatchWindowProcessor).
type lengthBatchWindow struct {
	n             int
	streamCurrent bool
	keepExpired   bool // the query emits expired events, so the window keeps them

	count        int
	current      []event
	expired      []event
	resetPending bool
}

func (*lengthBatchWindow) advance(int64, sink) {}

func (l *lengthBatchWindow) add(now int64, rows []expr.Row, out sink) {
	if l.n == 0 {
		l.passThrough(now, rows, out)
		return
	}
	if !l.streamCurrent || l.keepExpired {
		rows = cloneRows(rows) // the window keeps them
	}
	for _, r := range rows {
		l.resetPending = true // Siddhi makes a reset event whenever none is pending
		ev := event{time: now, row: r}
		var items []item
		if l.streamCurrent {
			l.count++
			if l.count == l.n+1 {
				items = l.flushHead(now, items)
				l.count = 1
			}
			items = append(items, item{kind: itCurrent, time: now, row: r})
			if l.keepExpired {
				l.expired = append(l.expired, ev)
			}
		} else {
			l.current = append(l.current, ev)
			l.count++
			if l.count == l.n {
				items = l.flushHead(now, items)
				items = append(items, asItems(l.current, itCurrent, 0, true)...)
				if l.keepExpired {
					l.expired = l.current
				}
				l.current = nil
				l.count = 0
			}
		}
		if len(items) > 0 {
			out(items, true)
		}
	}
}

// flushHead appends the expired events (stamped now) and the pending reset.
func (l *lengthBatchWindow) flushHead(now int64, items []item) []item {
	if l.keepExpired {
		items = append(items, asItems(l.expired, itExpired, now, false)...)
		l.expired = nil
	}
	if l.resetPending {
		items = append(items, item{kind: itReset, time: now})
		l.resetPending = false
	}
	return items
}

func (l *lengthBatchWindow) encode(w *wire.Writer) {
	w.Varint(int64(l.count))
	w.Bool(l.resetPending)
	encodeEvents(w, l.current)
	encodeEvents(w, l.expired)
}

func (l *lengthBatchWindow) decode(r *wire.Reader, width int) {
	l.count = int(r.Varint())
	l.resetPending = r.Bool()
	l.current = decodeEvents(r, width)
	l.expired = decodeEvents(r, width)
	if r.Err() == nil && (l.count < 0 || l.count > l.n) {
		r.Fail(fmt.Errorf("window: lengthBatch count %d out of range", l.count))
	}
}

// timeBatchWindow is timeBatch(t[, start.time][, stream.current.event])
// (TimeBatchWindowProcessor).
type timeBatchWindow struct {
	t             int64
	hasStart      bool
	start         int64
	streamCurrent bool
	keepExpired   bool

	started      bool
	nextEmit     int64
	current      []event
	expired      []event
	resetPending bool
}

func (tb *timeBatchWindow) advance(now int64, out sink) {
	for tb.started && now >= tb.nextEmit {
		if len(tb.current) == 0 && (len(tb.expired) == 0 || !tb.keepExpired) && !tb.resetPending {
			// Nothing to flush: skip the idle periods at once.
			k := (now-tb.nextEmit)/tb.t + 1
			tb.nextEmit += k * tb.t
			return
		}
		due := tb.nextEmit
		tb.nextEmit += tb.t
		var items []item
		if tb.keepExpired {
			items = append(items, asItems(tb.expired, itExpired, due, false)...)
			tb.expired = nil
		}
		if tb.resetPending {
			items = append(items, item{kind: itReset, time: due})
			tb.resetPending = false
		}
		if len(tb.current) > 0 {
			items = append(items, asItems(tb.current, itCurrent, 0, true)...)
			if tb.keepExpired {
				tb.expired = tb.current
			}
			tb.current = nil
		}
		if len(items) > 0 {
			out(items, true)
		}
	}
}

func (tb *timeBatchWindow) add(now int64, rows []expr.Row, out sink) {
	if len(rows) == 0 {
		return
	}
	if !tb.started {
		tb.started = true
		if tb.hasStart {
			// Java's % keeps the dividend's sign, as Go's does.
			elapsed := (now - tb.start) % tb.t
			tb.nextEmit = now + (tb.t - elapsed)
		} else {
			tb.nextEmit = now + tb.t
		}
	}
	tb.resetPending = true
	if !tb.streamCurrent || tb.keepExpired {
		rows = cloneRows(rows) // the window keeps them
	}
	var items []item
	for _, r := range rows {
		ev := event{time: now, row: r}
		if !tb.streamCurrent {
			tb.current = append(tb.current, ev)
			continue
		}
		items = append(items, item{kind: itCurrent, time: now, row: r})
		if tb.keepExpired {
			tb.expired = append(tb.expired, ev)
		}
	}
	if len(items) > 0 {
		out(items, true)
	}
}

func (tb *timeBatchWindow) encode(w *wire.Writer) {
	w.Bool(tb.started)
	w.Varint(tb.nextEmit)
	w.Bool(tb.resetPending)
	encodeEvents(w, tb.current)
	encodeEvents(w, tb.expired)
}

func (tb *timeBatchWindow) decode(r *wire.Reader, width int) {
	tb.started = r.Bool()
	tb.nextEmit = r.Varint()
	tb.resetPending = r.Bool()
	tb.current = decodeEvents(r, width)
	tb.expired = decodeEvents(r, width)
}
