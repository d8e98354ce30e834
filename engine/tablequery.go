package engine

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/engine/window"
	"github.com/tally-db/tally/siddhiql"
)

// IsTableQuery reports whether query is an on-demand query that reads a table of app
// (`from T ...` where T is a table), which TableQuery answers; store queries on an
// aggregation go through Plan.
func (e *Engine) IsTableQuery(app, query string) bool {
	a, ok := e.apps[app]
	if !ok {
		return false
	}
	_, ok = a.tables[siddhiql.QueryTarget(query)]
	return ok
}

// TableQuery answers an on-demand query that reads a table: the rows matching `on` (all
// rows without it), in insertion order, through the select, group by and having (reduced
// as one batch, as Siddhi's on-demand queries are: one row per group key, or one row when
// the select aggregates without group by), then order by, offset and limit.
func (e *Engine) TableQuery(app, query string) (*agg.Result, error) {
	a, ok := e.apps[app]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknownApp, app)
	}
	q, err := siddhiql.ParseTableQuery(query)
	if err != nil {
		return nil, err
	}
	t, ok := a.tables[q.From]
	if !ok {
		return nil, &siddhiql.Error{Pos: q.Pos, Msg: fmt.Sprintf("app %s has no table %s", app, q.From)}
	}
	fields := &expr.Fields{Stream: t.Name(), Alias: q.Alias, Attrs: t.Attrs()}
	var cond expr.Eval
	if q.On != nil {
		c, err := expr.Compile(q.On, fields)
		if err != nil {
			return nil, err
		}
		if c.Type != siddhiql.TypeBool {
			return nil, &siddhiql.Error{Pos: q.On.Position(), Msg: fmt.Sprintf("on needs a bool condition, got %s", c.Type)}
		}
		cond = c.Eval
	}
	sq := &siddhiql.Query{Pos: q.Pos, From: t.Name(), SelectAll: q.SelectAll, Select: q.Select, GroupBy: q.GroupBy, Having: q.Having, Into: "#result"}
	sel, err := window.CompileJoin(sq, t.Attrs(), fields, nil)
	if err != nil {
		return nil, err
	}
	var evs []window.Joined
	for _, r := range t.Rows() {
		if cond == nil || cond(r).Truth() {
			evs = append(evs, window.Joined{Row: r})
		}
	}
	res := &agg.Result{}
	for _, c := range sel.OutputAttrs() {
		res.Columns = append(res.Columns, agg.Column{Name: c.Name, Type: c.Type})
	}
	if len(evs) > 0 {
		sel.Select(e.now, evs, func(o window.Output) { res.Rows = append(res.Rows, o.Row) })
	}
	if err := orderRows(res, q.OrderBy); err != nil {
		return nil, err
	}
	off, err := countArg(q.Offset, "offset")
	if err != nil {
		return nil, err
	}
	lim, err := countArg(q.Limit, "limit")
	if err != nil {
		return nil, err
	}
	res.Rows = res.Rows[min(off, int64(len(res.Rows))):]
	if q.Limit != nil && lim < int64(len(res.Rows)) {
		res.Rows = res.Rows[:lim]
	}
	return res, nil
}

// orderRows sorts the answer by output attributes (stable: ties keep their order).
func orderRows(res *agg.Result, keys []siddhiql.OrderKey) error {
	if len(keys) == 0 {
		return nil
	}
	idx := make([]int, len(keys))
	for i, k := range keys {
		idx[i] = slices.IndexFunc(res.Columns, func(c agg.Column) bool { return c.Name == k.Var.Name })
		if idx[i] < 0 {
			return &siddhiql.Error{Pos: k.Var.Pos, Msg: fmt.Sprintf("order by %s: not an attribute of the select (%s)", k.Var.Name, columnNames(res.Columns))}
		}
	}
	slices.SortStableFunc(res.Rows, func(a, b []expr.Value) int {
		for i, k := range keys {
			c := compareValues(a[idx[i]], b[idx[i]])
			if k.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
	return nil
}

func columnNames(cs []agg.Column) string {
	n := make([]string, len(cs))
	for i, c := range cs {
		n[i] = c.Name
	}
	return strings.Join(n, ", ")
}

// compareValues orders values: nulls first, numbers numerically, strings and bools by text.
func compareValues(a, b expr.Value) int {
	switch {
	case a.IsNull() && b.IsNull():
		return 0
	case a.IsNull():
		return -1
	case b.IsNull():
		return 1
	case a.T.Numeric() && b.T.Numeric():
		if !a.IsFloat() && !b.IsFloat() {
			return cmp.Compare(a.I, b.I)
		}
		return cmp.Compare(a.AsFloat(), b.AsFloat())
	}
	return strings.Compare(a.String(), b.String())
}

// countArg evaluates a constant, non-negative int or long (limit, offset); 0 when absent.
func countArg(e siddhiql.Expr, what string) (int64, error) {
	if e == nil {
		return 0, nil
	}
	c, err := expr.Compile(e, &expr.Fields{})
	if err != nil {
		return 0, err
	}
	v := c.Eval(nil)
	if !c.Const || (v.T != siddhiql.TypeInt && v.T != siddhiql.TypeLong) || v.I < 0 {
		return 0, &siddhiql.Error{Pos: e.Position(), Msg: fmt.Sprintf("%s needs a non-negative int or long constant", what)}
	}
	return v.I, nil
}
