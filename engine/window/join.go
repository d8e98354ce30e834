package window

import (
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// InResolver compiles `cond in Table` for a filter over the stream fields.
type InResolver interface {
	CompileIn(n *siddhiql.In, fields *expr.Fields) (*expr.Compiled, error)
}

// inScope is the filter scope when the app has tables.
type inScope struct {
	*expr.Fields
	tables InResolver
}

// In implements expr.InScope.
func (s *inScope) In(n *siddhiql.In) (*expr.Compiled, error) { return s.tables.CompileIn(n, s.Fields) }

// Contents returns the events the query's window holds now, oldest first: what a join
// finds on this side. Sliding windows hold their live events; batch windows the last
// flushed batch (kept only when the query emits expired events); no window holds nothing.
// The rows must not be modified.
func (q *Query) Contents() []expr.Row {
	var evs []event
	switch w := q.win.(type) {
	case *lengthWindow:
		return w.evs.contents()
	case *timeWindow:
		return w.evs.contents()
	case *externalTimeWindow:
		return w.evs.contents()
	case *lengthBatchWindow:
		evs = w.expired
	case *timeBatchWindow:
		evs = w.expired
	case *externalTimeBatchWindow:
		evs = w.expired
	}
	out := make([]expr.Row, len(evs))
	for i, e := range evs {
		out[i] = e.row
	}
	return out
}

// HasWindow reports whether the query has a window.
func (q *Query) HasWindow() bool {
	_, none := q.win.(*noWindow)
	return !none
}

// Joined is one event a join hands to its selector: a joined row (left attributes, then
// right), CURRENT or EXPIRED, or a reset of the aggregates.
type Joined struct {
	Kind  Kind
	Reset bool
	Time  int64
	Row   expr.Row
}

// Select runs the query's selector (no window, no filter) over one chunk of joined events
// (what one event leaving an input's window joined to), at stamped time now, reduced as a
// batch, as Siddhi's selector treats every join chunk: one output per group key, or the
// last one when the query aggregates without group by. The rows are not kept.
func (q *Query) Select(now int64, evs []Joined, emit func(Output)) {
	q.tick(now)
	items := make([]item, 0, len(evs))
	for _, e := range evs {
		it := item{kind: itCurrent, time: e.Time, row: e.Row} // the selector keeps no row
		switch {
		case e.Reset:
			it.kind = itReset
		case e.Kind == Expired:
			it.kind = itExpired
		}
		items = append(items, it)
	}
	q.selectChunk(items, true, emit)
}

// EmitsExpired reports whether the query inserts expired events.
func (q *Query) EmitsExpired() bool { return q.expiredOn }

// CompileJoin compiles the selector of a join query: q's select, group by and having over
// the joined row attrs (left attributes, then right), with scope resolving names (qualified
// by a side's name or alias) to positions in it. q must have no filter or window of its own
// (a join's inputs carry them); having may also read input attributes by qualified name.
// env is what its functions read besides the row (nil: none).
func CompileJoin(q *siddhiql.Query, attrs []siddhiql.Attribute, scope expr.Scope, env *expr.Env) (*Query, error) {
	return compileQuery(q, &siddhiql.StreamDef{Pos: q.Pos, Name: q.From, Attributes: attrs}, nil, scope, env)
}

// In lets select and having use `cond in T` (over the input attributes) when the query's
// filters can: the resolver sees the same input row.
func (s *selectScope) In(n *siddhiql.In) (*expr.Compiled, error) {
	if in, ok := s.fields.(expr.InScope); ok {
		return in.In(n)
	}
	return nil, errAt(n.Pos, "'in %s' (a table lookup) is not supported here", n.Table)
}
