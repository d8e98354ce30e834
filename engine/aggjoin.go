package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/engine/table"
	"github.com/tally-db/tally/engine/window"
	"github.com/tally-db/tally/siddhiql"
)

// A stream joined to an aggregation (`from S as s join Agg as a on … within x, y per p`):
// each event of the stream side (the only side that triggers) finds the aggregation's rows of
// granularity p whose bucket is in [x, y), merged per bucket and group as a store query
// merges them, with attributes AGG_TIMESTAMP and the aggregation's outputs. `on`, select,
// group by, having, order by, limit and offset then run over the joined rows of that event.
// within and per are expressions over the stream event: two longs (epoch ms) or time strings,
// or one time pattern with ** wildcards; per a granularity name the aggregation keeps. An
// event whose bounds do not resolve (a bad time string, start not before end, a granularity
// the aggregation does not keep) finds no rows.
//
// The join reads the rows the group holds in memory: the open buckets and, for every
// aggregation some join reads, the closed rows of the agg.JoinRetention arrival buckets
// before the open one (agg.State.Retain), which a flush does not drop. Older rows live only
// in the shared store, where a store query reads them; a join whose within is a constant span
// longer than that retention is refused at deploy.

// aggSide is a join input that is an aggregation.
type aggSide struct {
	name     string
	def      *agg.Def // the definition this app declares
	readOnly bool
	// state is what the join reads: the app's own aggregation, or for a read-only one the
	// same-named aggregation of the app that feeds it (nil while no such app is deployed).
	state *agg.State
	// cols maps each of the join's aggregation attributes to its position in the feeding
	// aggregation's agg.JoinAttrs; nil when they are the same.
	cols []int

	start, end, per expr.Eval // over the stream event placed at off in a row of width
	pattern         bool      // one within value: a time pattern
	perConst        bool      // per is a constant: only that granularity is read
	perDur          siddhiql.Duration
	off, width      int
	buf             expr.Row
}

// aggJoinInput returns the join input for aggregation s, or false when s names none.
func (a *App) aggJoinInput(s *siddhiql.JoinSide) (*joinInput, bool, error) {
	side := &aggSide{name: s.Name}
	if st, ok := a.aggs[s.Name]; ok {
		side.def, side.state = st.Def(), st
	} else if d, ok := a.readOnly[s.Name]; ok {
		side.def, side.readOnly = d, true
	} else {
		return nil, false, nil
	}
	switch {
	case s.Window != nil:
		return nil, true, &siddhiql.Error{Pos: s.Window.Pos, Msg: fmt.Sprintf("join input %s is an aggregation: it cannot have a window", s.Name)}
	case s.Filter != nil || s.PostFilter != nil:
		return nil, true, &siddhiql.Error{Pos: s.Pos, Msg: fmt.Sprintf("join input %s is an aggregation: put its conditions in the join's 'on'", s.Name)}
	case s.Unidirectional:
		return nil, true, &siddhiql.Error{Pos: s.Pos, Msg: fmt.Sprintf("join input %s is an aggregation, which never triggers the join: mark the stream unidirectional, or nothing", s.Name)}
	}
	return &joinInput{name: s.Name, attrs: agg.JoinAttrs(side.def), agg: side}, true, nil
}

// compileAggJoin checks what a join with an aggregation needs (one stream side, within and
// per, no outer join on the aggregation's side) and compiles within and per.
func (a *App) compileAggJoin(jq *joinQuery, qd *siddhiql.Query, pair *table.Pair) error {
	j := qd.Join
	ai := -1
	for i, in := range jq.sides {
		if in.agg != nil {
			ai = i
		}
	}
	if ai < 0 {
		switch {
		case j.WithinStart != nil:
			return &siddhiql.Error{Pos: j.WithinStart.Position(), Msg: "'within ... per ...' belongs to joins with an aggregation: neither " + j.Left.Name + " nor " + j.Right.Name + " is one"}
		case qd.Order != nil:
			return &siddhiql.Error{Pos: qd.Order.Pos, Msg: "order by, limit and offset are supported in joins with an aggregation only"}
		}
		return nil
	}
	side, other := jq.sides[ai].agg, jq.sides[1-ai]
	sd := []*siddhiql.JoinSide{&j.Left, &j.Right}[ai]
	switch {
	case other.agg != nil:
		return &siddhiql.Error{Pos: j.Pos, Msg: fmt.Sprintf("a join needs a stream: %s and %s are both aggregations", j.Left.Name, j.Right.Name)}
	case other.tbl != nil:
		return &siddhiql.Error{Pos: j.Pos, Msg: fmt.Sprintf("a join with aggregation %s needs a stream on its other side: %s is a table", side.name, other.name)}
	case j.WithinStart == nil:
		return &siddhiql.Error{Pos: sd.Pos, Msg: fmt.Sprintf("a join with aggregation %s needs 'within start, end per \"granularity\"' after its condition", side.name)}
	case j.Kind == siddhiql.FullOuterJoin || (ai == 0 && j.Kind == siddhiql.LeftOuterJoin) || (ai == 1 && j.Kind == siddhiql.RightOuterJoin):
		return &siddhiql.Error{Pos: j.Pos, Msg: fmt.Sprintf("%s: aggregation %s never triggers the join, so its rows cannot come out unmatched: use an inner join, or an outer join on the stream's side", j.Kind, side.name)}
	}
	jq.sides[ai].trigger = false
	side.off, side.width = 0, len(pair.Left.Attrs)+len(pair.Right.Attrs)
	if ai == 0 {
		side.off = len(pair.Left.Attrs)
	}
	side.buf = make(expr.Row, side.width)
	sc := expr.WithEnv(&streamOnly{p: pair, lo: side.off, hi: side.off + len(other.attrs), agg: side.name}, a.env)
	compile := func(e siddhiql.Expr, what string) (*expr.Compiled, error) {
		c, err := expr.Compile(e, sc)
		if err != nil {
			return nil, err
		}
		switch c.Type {
		case siddhiql.TypeString, siddhiql.TypeLong, siddhiql.TypeInt:
		default:
			return nil, expr.Errorf(e, "%s of the join with aggregation %s must be a long (epoch ms) or a time string, got %s", what, side.name, c.Type)
		}
		return c, nil
	}
	cs, err := compile(j.WithinStart, "within")
	if err != nil {
		return err
	}
	side.start, side.pattern = cs.Eval, j.WithinEnd == nil
	ce := cs
	if !side.pattern {
		if ce, err = compile(j.WithinEnd, "within's end"); err != nil {
			return err
		}
		side.end = ce.Eval
	}
	cp, err := expr.Compile(j.Per, sc)
	if err != nil {
		return err
	}
	if cp.Type != siddhiql.TypeString {
		return expr.Errorf(j.Per, "per of the join with aggregation %s must be a string such as \"minutes\", got %s", side.name, cp.Type)
	}
	side.per = cp.Eval
	if cp.Const {
		d, err := perDuration(side.def, cp.Eval(nil))
		if err != nil {
			return expr.Errorf(j.Per, "%v", err)
		}
		side.perConst, side.perDur = true, d
	}
	if cs.Const && ce.Const {
		start, end, err := withinBounds(cs.Eval(nil), side.endValue(nil), side.pattern)
		if err != nil {
			return expr.Errorf(j.WithinStart, "within of the join with aggregation %s: %v", side.name, err)
		}
		keep := side.def.Durations[len(side.def.Durations)-1]
		if side.perConst {
			keep = side.perDur
		}
		if span := end - start; span > agg.RetentionSpan(keep) {
			return expr.Errorf(j.WithinStart, "within spans %s to %s, more than the %d %s buckets (about %s) of aggregation %s that the engine keeps in memory for joins; a join sees only those rows, older ones live only in the shared store: read them with a store query",
				agg.FormatMillis(start), agg.FormatMillis(end), agg.JoinRetention, lower(keep), retentionText(keep), side.name)
		}
	}
	if qd.Order != nil {
		if err := jq.compileOrder(qd); err != nil {
			return err
		}
	}
	a.aggJoins = append(a.aggJoins, side)
	return nil
}

// endValue is the within end for a row, or null for the one-value pattern form.
func (s *aggSide) endValue(row expr.Row) expr.Value {
	if s.end == nil {
		return expr.Null
	}
	return s.end(row)
}

// find returns the rows the aggregation holds for stream event ev, in the join's attribute
// order.
func (s *aggSide) find(ev expr.Row) []expr.Row {
	if s.state == nil {
		return nil
	}
	copy(s.buf[s.off:], ev)
	start, end, err := withinBounds(s.start(s.buf), s.endValue(s.buf), s.pattern)
	if err != nil {
		return nil
	}
	per := s.perDur
	if !s.perConst {
		if per, err = perDuration(s.def, s.per(s.buf)); err != nil {
			return nil
		}
	}
	rows := s.state.JoinRows(per, start, end)
	if s.cols != nil {
		for i, r := range rows {
			p := make(expr.Row, len(s.cols))
			for k, c := range s.cols {
				p[k] = r[c]
			}
			rows[i] = p
		}
	}
	return rows
}

// withinBounds resolves a join's within values: two longs or time strings with start before
// end, or (pattern) one time string with ** wildcards.
func withinBounds(sv, ev expr.Value, pattern bool) (int64, int64, error) {
	if pattern {
		if sv.T != siddhiql.TypeString {
			return 0, 0, fmt.Errorf("a single within value must be a time pattern string such as \"2014-02-15 **:**:**\", got %s", sv.T)
		}
		return agg.WithinPattern(sv.S)
	}
	start, err := withinMillis(sv)
	if err != nil {
		return 0, 0, err
	}
	end, err := withinMillis(ev)
	if err != nil {
		return 0, 0, err
	}
	if start >= end {
		return 0, 0, fmt.Errorf("within start %s must be before end %s", agg.FormatMillis(start), agg.FormatMillis(end))
	}
	return start, end, nil
}

func withinMillis(v expr.Value) (int64, error) {
	switch v.T {
	case siddhiql.TypeInt, siddhiql.TypeLong:
		return v.I, nil
	case siddhiql.TypeString:
		return agg.ParseTimestamp(v.S)
	}
	return 0, fmt.Errorf("within value must be a long (epoch ms) or a time string, got %s", v.T)
}

// perDuration resolves per to one of def's granularities.
func perDuration(def *agg.Def, v expr.Value) (siddhiql.Duration, error) {
	if v.T != siddhiql.TypeString {
		return 0, fmt.Errorf("per must be a string such as \"minutes\", got %s", v.T)
	}
	d, ok := siddhiql.ParseDuration(v.S)
	if !ok {
		return 0, fmt.Errorf("per %q is not a granularity: use seconds, minutes, hours, days, months or years", v.S)
	}
	if !def.HasDuration(d) {
		return 0, fmt.Errorf("aggregation %s does not keep %s", def.Name, lower(d))
	}
	return d, nil
}

// streamOnly is the join's scope restricted to the stream side, at [lo, hi) of the joined
// row: what within and per read.
type streamOnly struct {
	p      *table.Pair
	lo, hi int
	agg    string
}

// Var implements expr.Scope: the aggregation's attributes are refused.
func (s *streamOnly) Var(v *siddhiql.Variable) (int, siddhiql.Type, error) {
	idx, t, err := s.p.Var(v)
	if err == nil && (idx < s.lo || idx >= s.hi) {
		return 0, 0, &siddhiql.Error{Pos: v.Pos, Msg: fmt.Sprintf("within and per read the stream event: %s is an attribute of aggregation %s", v.Name, s.agg)}
	}
	return idx, t, err
}

// Call implements expr.Scope: functions are left to expr.
func (s *streamOnly) Call(*siddhiql.Call) (int, siddhiql.Type, bool, error) { return 0, 0, false, nil }

// joinOrder is a join's `order by`, `limit` and `offset`, applied to the outputs of each
// chunk (what one event joined to), as Siddhi's selector does.
type joinOrder struct {
	keys          []orderKey
	limit, offset int64 // limit -1: none
}

type orderKey struct {
	col  int
	desc bool
}

// compileOrder resolves order by against the query's output attributes.
func (j *joinQuery) compileOrder(qd *siddhiql.Query) error {
	o := qd.Order
	if qd.Rate != nil {
		return &siddhiql.Error{Pos: o.Pos, Msg: "order by, limit and offset cannot be combined with an output rate limit"}
	}
	jo := &joinOrder{limit: -1}
	names := qd.Select
	for _, k := range o.OrderBy {
		i := slices.IndexFunc(names, func(a siddhiql.OutputAttr) bool { return a.OutputName() == k.Var.Name })
		if i < 0 {
			return &siddhiql.Error{Pos: k.Var.Pos, Msg: fmt.Sprintf("order by %s: not an attribute the query selects", k.Var.Name)}
		}
		jo.keys = append(jo.keys, orderKey{col: i, desc: k.Desc})
	}
	var err error
	if jo.limit, err = orderCount(o.Limit, "limit", -1); err != nil {
		return err
	}
	if jo.offset, err = orderCount(o.Offset, "offset", 0); err != nil {
		return err
	}
	j.order = jo
	return nil
}

func orderCount(e siddhiql.Expr, what string, def int64) (int64, error) {
	if e == nil {
		return def, nil
	}
	c, err := expr.Compile(e, &expr.Fields{Stream: what})
	if err != nil {
		return 0, err
	}
	v := expr.Null
	if c.Const {
		v = c.Eval(nil)
	}
	if (v.T != siddhiql.TypeInt && v.T != siddhiql.TypeLong) || v.I < 0 {
		return 0, expr.Errorf(e, "%s must be a non-negative integer constant", what)
	}
	return v.I, nil
}

// selectChunk runs the selector over one chunk, then its order by, offset and limit.
func (j *joinQuery) selectChunk(now int64, evs []window.Joined, emit func(window.Output)) {
	if j.order == nil {
		j.sel.Select(now, evs, emit)
		return
	}
	var outs []window.Output
	j.sel.Select(now, evs, func(o window.Output) { outs = append(outs, o) })
	if len(j.order.keys) > 0 {
		slices.SortStableFunc(outs, func(a, b window.Output) int {
			for _, k := range j.order.keys {
				c := agg.Compare(a.Row[k.col], b.Row[k.col])
				if k.desc {
					c = -c
				}
				if c != 0 {
					return c
				}
			}
			return 0
		})
	}
	outs = outs[min(int(j.order.offset), len(outs)):]
	if j.order.limit >= 0 && int(j.order.limit) < len(outs) {
		outs = outs[:j.order.limit]
	}
	for _, o := range outs {
		emit(o)
	}
}

// retentionText says how much time agg.JoinRetention buckets of d cover.
func retentionText(d siddhiql.Duration) string {
	switch d {
	case siddhiql.Seconds:
		return "2 minutes"
	case siddhiql.Minutes:
		return "2 hours"
	case siddhiql.Hours:
		return "5 days"
	}
	return fmt.Sprintf("%d %s", agg.JoinRetention, lower(d))
}

func lower(d siddhiql.Duration) string { return strings.ToLower(d.String()) }
