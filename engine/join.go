package engine

import (
	"fmt"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/engine/table"
	"github.com/tally-db/tally/engine/window"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// joinQuery runs a join: each stream input keeps its window (a window.Query selecting every
// attribute and emitting current and expired events); an event leaving a triggering input's
// window (CURRENT as it enters, EXPIRED as it leaves) is joined with what the other input
// holds now (its window's contents, or the table's rows) and the joined rows go, in order, to
// the query's selector. An input without a window holds nothing; each of its events passes
// as CURRENT, then EXPIRED when the query emits expired events, then resets the aggregates,
// as Siddhi's empty window does.
type joinQuery struct {
	def   *siddhiql.Join
	sides [2]*joinInput
	on    *table.Cond
	keyed *table.Keyed // on, when one input is a table whose primary key it pins
	sel   *window.Query
	order *joinOrder // order by, limit, offset (aggjoin.go); nil when absent
}

type joinInput struct {
	name    string
	attrs   []siddhiql.Attribute
	win     *window.Query // stream input; nil for a table
	tbl     *table.Table  // table input; nil for a stream
	agg     *aggSide      // aggregation input (aggjoin.go); nil otherwise
	trigger bool
	outer   bool // emit its unmatched events with nulls for the other side
}

func (a *App) joinInput(s *siddhiql.JoinSide) (*joinInput, error) {
	if st, ok := a.streams[s.Name]; ok {
		// The input's window emits expired events whatever the query inserts: they join and
		// take their part out of the selector's aggregates; the selector drops the kinds the
		// query does not insert. A batch window so also keeps its last batch to be joined with.
		sq := &siddhiql.Query{Pos: s.Pos, From: s.Name, Filter: s.Filter, Window: s.Window, PostFilter: s.PostFilter,
			SelectAll: true, Output: siddhiql.AllEvents, Into: "#join"}
		w, err := window.CompileWithEnv(sq, st.def, a, a.env)
		if err != nil {
			return nil, err
		}
		return &joinInput{name: s.Name, attrs: st.def.Attributes, win: w, trigger: true}, nil
	}
	if t, ok := a.tables[s.Name]; ok {
		switch {
		case s.Window != nil:
			return nil, &siddhiql.Error{Pos: s.Window.Pos, Msg: fmt.Sprintf("join input %s is a table: it cannot have a window", s.Name)}
		case s.Filter != nil || s.PostFilter != nil:
			return nil, &siddhiql.Error{Pos: s.Pos, Msg: fmt.Sprintf("join input %s is a table: put its conditions in the join's 'on'", s.Name)}
		case s.Unidirectional:
			return nil, &siddhiql.Error{Pos: s.Pos, Msg: fmt.Sprintf("join input %s is a table, which cannot trigger the join: mark the stream unidirectional, or nothing", s.Name)}
		}
		return &joinInput{name: s.Name, attrs: t.Attrs(), tbl: t}, nil
	}
	if in, ok, err := a.aggJoinInput(s); ok {
		return in, err
	}
	return nil, &siddhiql.Error{Pos: s.Pos, Msg: fmt.Sprintf("join reads %s, which is neither a stream, a table nor an aggregation of this app (defined before the query)", s.Name)}
}

// compileJoin compiles a join query and connects it to its input streams and its output.
func (a *App) compileJoin(qd *siddhiql.Query) error {
	j := qd.Join
	jq := &joinQuery{def: j}
	for i, s := range []*siddhiql.JoinSide{&j.Left, &j.Right} {
		in, err := a.joinInput(s)
		if err != nil {
			return err
		}
		jq.sides[i] = in
	}
	if jq.sides[0].tbl != nil && jq.sides[1].tbl != nil {
		return &siddhiql.Error{Pos: j.Pos, Msg: fmt.Sprintf("a join needs a stream: %s and %s are both tables", j.Left.Name, j.Right.Name)}
	}
	switch {
	case j.Left.Unidirectional:
		jq.sides[1].trigger = false
	case j.Right.Unidirectional:
		jq.sides[0].trigger = false
	}
	for i := range jq.sides {
		if jq.sides[i].tbl != nil {
			jq.sides[i].trigger = false
		}
	}
	jq.sides[0].outer = j.Kind == siddhiql.LeftOuterJoin || j.Kind == siddhiql.FullOuterJoin
	jq.sides[1].outer = j.Kind == siddhiql.RightOuterJoin || j.Kind == siddhiql.FullOuterJoin

	pair := &table.Pair{
		Left:  table.Side{Names: sideNames(&j.Left), Attrs: jq.sides[0].attrs},
		Right: table.Side{Names: sideNames(&j.Right), Attrs: jq.sides[1].attrs},
		What:  "join",
	}
	if err := a.compileAggJoin(jq, qd, pair); err != nil { // aggjoin.go
		return err
	}
	var err error
	if jq.on, err = table.CompileCond(j.On, pair); err != nil {
		return err
	}
	if t := jq.sides[1].tbl; t != nil {
		jq.keyed = table.KeyedCond(t, jq.on, j.On, pair, false)
	} else if t := jq.sides[0].tbl; t != nil {
		jq.keyed = table.KeyedCond(t, jq.on, j.On, pair, true)
	}
	sq := *qd
	if sq.SelectAll || len(sq.Select) == 0 {
		sq.SelectAll = false
		sq.Select = nil
		for k, s := range []*siddhiql.JoinSide{&j.Left, &j.Right} {
			for _, at := range jq.sides[k].attrs {
				sq.Select = append(sq.Select, siddhiql.OutputAttr{Pos: qd.Pos, Expr: &siddhiql.Variable{Pos: qd.Pos, Stream: s.Ref(), Name: at.Name}})
			}
		}
	}
	attrs := append(append([]siddhiql.Attribute(nil), jq.sides[0].attrs...), jq.sides[1].attrs...)
	if jq.sel, err = window.CompileJoin(&sq, attrs, pair, a.env); err != nil {
		return err
	}
	q := &query{def: qd, rt: jq.sel, attrs: jq.sel.OutputAttrs(), join: jq}
	if err := a.connectOutput(q); err != nil {
		return err
	}
	for i, in := range jq.sides {
		if in.win == nil || (i == 1 && in.name == jq.sides[0].name) {
			continue
		}
		st := a.streams[in.name]
		st.queries = append(st.queries, q)
	}
	a.queries = append(a.queries, q)
	return nil
}

// feedsItself reports whether the join inserts into one of its own stream inputs, as
// Siddhi's alert-suppression apps do (`from A#window.length(1) as a left outer join
// Suppressed#window.time(10 min) as b ... having b.x is null insert into Suppressed`): what
// the join outputs enters the window it is joined against. Such a loop through a window is
// allowed (without one it would only repeat itself); the
// engine feeds outputs on at most maxDepth levels deep. Nil-safe.
func (j *joinQuery) feedsItself(into string) bool {
	if j == nil {
		return false
	}
	for _, in := range j.sides {
		if in.win != nil && in.win.HasWindow() && in.name == into {
			return true
		}
	}
	return false
}

func sideNames(s *siddhiql.JoinSide) []string {
	if s.Alias != "" {
		return []string{s.Name, s.Alias}
	}
	return []string{s.Name}
}

// process takes events that arrived on stream name, for every input that reads it. Every
// input's window first moves to now, so the events meet only what is still live there.
func (j *joinQuery) process(name string, now int64, events []expr.Row, emit func(window.Output)) {
	j.expire(now, emit)
	for i, in := range j.sides {
		if in.win == nil || in.name != name {
			continue
		}
		var outs []window.Output
		in.win.Process(now, events, func(o window.Output) { outs = append(outs, o) })
		j.join(i, now, outs, !in.win.HasWindow(), emit)
	}
}

// advance moves the inputs' windows to now; what expires joins as EXPIRED.
func (j *joinQuery) advance(now int64, emit func(window.Output)) {
	j.expire(now, emit)
	j.sel.Advance(now, emit)
}

// expire fires the inputs' timers due at or before now, left input first; what leaves a
// window joins as EXPIRED.
func (j *joinQuery) expire(now int64, emit func(window.Output)) {
	for i, in := range j.sides {
		if in.win == nil {
			continue
		}
		var outs []window.Output
		in.win.Advance(now, func(o window.Output) { outs = append(outs, o) })
		j.join(i, now, outs, false, emit)
	}
}

// join joins the events that left input i's window with the other input and selects.
func (j *joinQuery) join(i int, now int64, outs []window.Output, empty bool, emit func(window.Output)) {
	in, other := j.sides[i], j.sides[1-i]
	if !in.trigger || len(outs) == 0 {
		return
	}
	keyed := other.tbl != nil && j.keyed != nil
	var found []expr.Row
	switch {
	case other.agg != nil: // found per event
	case other.tbl == nil:
		found = other.win.Contents()
	case !keyed:
		found = other.tbl.Rows()
	}
	nl, nr := len(j.sides[0].attrs), len(j.sides[1].attrs)
	one := func(kind window.Kind, t int64, row expr.Row) {
		var evs []window.Joined
		if keyed { // at most the one row with the event's key
			found = found[:0]
			if k := j.keyed.Match(row); k >= 0 {
				found = append(found, other.tbl.Row(k))
			}
		}
		if other.agg != nil {
			found = other.agg.find(row)
		}
		for _, f := range found {
			l, r := row, f
			if i == 1 {
				l, r = f, row
			}
			if j.on.Holds(l, r) {
				evs = append(evs, window.Joined{Kind: kind, Time: t, Row: table.Concat(l, nl, r, nr)})
			}
		}
		if len(evs) == 0 && in.outer {
			var l, r expr.Row = row, nil
			if i == 1 {
				l, r = nil, row
			}
			evs = append(evs, window.Joined{Kind: kind, Time: t, Row: table.Concat(l, nl, r, nr)})
		}
		if len(evs) > 0 {
			j.selectChunk(now, evs, emit)
		}
	}
	for _, o := range outs {
		one(o.Kind, o.Time, o.Row)
		if empty {
			if j.sel.EmitsExpired() {
				one(window.Expired, now, o.Row)
			}
			j.sel.Select(now, []window.Joined{{Reset: true, Time: now}}, emit)
		}
	}
}

// encode writes the inputs' windows (the selector is the query's rt, encoded after).
func (j *joinQuery) encode(w *wire.Writer) {
	for _, in := range j.sides {
		if in.win != nil {
			in.win.Encode(w)
		}
	}
}

func (j *joinQuery) decode(r *wire.Reader) error {
	for _, in := range j.sides {
		if in.win != nil {
			if err := in.win.Decode(r); err != nil {
				return fmt.Errorf("join input %s: %w", in.name, err)
			}
		}
	}
	return nil
}

// encode writes one query's state: a join's inputs, then its selector.
func (q *query) encode(w *wire.Writer) {
	if q.join != nil {
		q.join.encode(w)
	}
	if q.fn != nil { // only apps with a stream function: older states have none
		q.fn.encode(w)
	}
	q.rt.Encode(w)
}

func (q *query) decode(r *wire.Reader) error {
	if q.join != nil {
		if err := q.join.decode(r); err != nil {
			return err
		}
	}
	if q.fn != nil {
		if err := q.fn.decode(r); err != nil {
			return err
		}
	}
	return q.rt.Decode(r)
}
