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
// rows are copied, so the caller may reuse them. Timers due at or before now fire first
// (Advance), then the events pass the filter and enter the window. Outputs are passed to
// emit in a deterministic order. A now below the query's clock is taken as the clock.
func (q *Query) Process(now int64, events []expr.Row, emit func(Output)) {
	now = q.tick(now)
	if q.lim != nil {
		q.lim.anchor(now)
		defer q.lim.due(now, emit)
	}
	out := q.sink(emit)
	q.win.advance(now, out)
	q.eventTime(now)
	rows := make([]expr.Row, 0, len(events))
	for _, r := range events {
		if len(r) != q.nIn {
			panic(fmt.Sprintf("window: event has %d values, stream has %d attributes", len(r), q.nIn))
		}
		if q.filter != nil && !q.filter(r).Truth() {
			continue
		}
		rows = append(rows, slices.Clone(r))
	}
	if len(rows) > 0 {
		q.win.add(now, rows, out)
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

// groupKey is the group-by key of row ("" without group by).
func (q *Query) groupKey(row expr.Row) string {
	if len(q.groupBy) == 0 {
		return ""
	}
	var b []byte
	for _, i := range q.groupBy {
		b = row[i].Key(b)
	}
	return string(b)
}

// apply updates the aggregates with one item and returns the full row (input, output,
// aggregate slots) and whether it passes the having condition.
func (q *Query) apply(it item, key string) (expr.Row, bool) {
	g := q.groups[key]
	if g == nil {
		g = &group{aggs: make([]aggState, len(q.aggs))}
		q.groups[key] = g
	}
	sign := int64(1)
	if it.kind == itExpired {
		sign = -1
	}
	g.events += sign
	q.eventTime(it.time)
	for i := range q.aggs {
		q.aggs[i].update(&g.aggs[i], it.row, sign)
	}
	full := make(expr.Row, q.aggBase()+len(q.aggs))
	copy(full, it.row)
	for i := range q.aggs {
		full[q.aggBase()+i] = q.aggs[i].value(&g.aggs[i])
	}
	if g.events <= 0 {
		delete(q.groups, key) // an empty group is the same as a fresh one
	}
	for i, ev := range q.sel {
		full[q.outBase()+i] = ev(full)
	}
	return full, q.having == nil || q.having(full).Truth()
}

func (q *Query) wanted(k itemKind) bool {
	return (k == itCurrent && q.currentOn) || (k == itExpired && q.expiredOn)
}

func (q *Query) output(it item, full expr.Row) Output {
	kind := Current
	if it.kind == itExpired {
		kind = Expired
	}
	return Output{Kind: kind, Time: it.time, Row: slices.Clone(full[q.outBase():q.aggBase()])}
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
	grouped := batch && len(q.groupBy) > 0
	lastOnly := batch && !grouped && q.hasAgg
	var (
		byKey   map[string]int
		outs    []Output
		outKeys []string
		last    *Output
		lastKey string
	)
	send := emit
	if q.lim != nil {
		send = func(o Output) { q.lim.offer(o, lastKey, emit) }
	}
	for _, it := range items {
		if it.kind == itReset {
			clear(q.groups)
			if q.lim != nil {
				q.lim.windowReset(it.time, emit)
			}
			continue
		}
		key := q.groupKey(it.row)
		full, pass := q.apply(it, key)
		if !pass || !q.wanted(it.kind) {
			continue
		}
		o := q.output(it, full)
		switch {
		case grouped:
			if byKey == nil {
				byKey = map[string]int{}
			}
			if i, ok := byKey[key]; ok {
				outs[i] = o // LinkedHashMap.put: keeps the key's first position
			} else {
				byKey[key] = len(outs)
				outs = append(outs, o)
				outKeys = append(outKeys, key)
			}
		case lastOnly:
			last, lastKey = &o, key
		default:
			lastKey = key
			send(o)
		}
	}
	for i, o := range outs {
		lastKey = outKeys[i]
		send(o)
	}
	if last != nil {
		send(*last)
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
		g := &group{events: r.Varint(), aggs: make([]aggState, len(q.aggs))}
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
