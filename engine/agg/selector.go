package agg

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// selector runs a store query's select, group by, having, order by, limit and offset over
// the merged aggregation rows.
type selector struct {
	columns []Column
	items   []expr.Eval
	having  expr.Eval
	group   []int // positions in the input row
	// calls are the aggregate functions of select and having, computed into slots after
	// the input columns.
	calls   []*call
	width   int // input row width
	orderBy []orderKey
	limit   int64 // -1: none
	offset  int64
}

type orderKey struct {
	col  int // position in the output row; for hidden keys, after the selected columns
	desc bool
	// input is the position in the input row of a key that is not selected (Siddhi lets
	// a store query order by any attribute of the aggregation), or -1.
	input int
}

type call struct {
	fn   string
	arg  expr.Eval
	typ  siddhiql.Type
	node *siddhiql.Call
}

// scope resolves variables against the input row and aggregate calls to slots.
type selScope struct {
	*expr.Fields
	s *selector
}

func (sc selScope) Call(c *siddhiql.Call) (int, siddhiql.Type, bool, error) {
	if !expr.IsAggregate(c) {
		return 0, 0, false, nil
	}
	fn := strings.ToLower(c.Name)
	k := &call{fn: fn, node: c, typ: siddhiql.TypeLong}
	if fn != "count" {
		if len(c.Args) != 1 {
			return 0, 0, false, expr.Errorf(c, "%s() takes one argument, got %d", c.Name, len(c.Args))
		}
		a, err := expr.Compile(c.Args[0], sc.Fields)
		if err != nil {
			return 0, 0, false, err
		}
		if fn != "distinctcount" && !a.Type.Numeric() {
			return 0, 0, false, expr.Errorf(c, "%s() needs a number, got %s", c.Name, a.Type)
		}
		k.arg = a.Eval
		switch fn {
		case "sum":
			if a.Type == siddhiql.TypeFloat || a.Type == siddhiql.TypeDouble {
				k.typ = siddhiql.TypeDouble
			}
		case "avg":
			k.typ = siddhiql.TypeDouble
		case "min", "max":
			k.typ = a.Type
		}
	}
	sc.s.calls = append(sc.s.calls, k)
	return sc.s.width + len(sc.s.calls) - 1, k.typ, true, nil
}

func newSelector(fields *expr.Fields, items []siddhiql.OutputAttr, q *siddhiql.StoreQuery) (*selector, error) {
	s := &selector{width: len(fields.Attrs), limit: -1}
	sc := selScope{Fields: fields, s: s}
	for _, g := range q.GroupBy {
		i, _, err := fields.Var(g)
		if err != nil {
			return nil, err
		}
		s.group = append(s.group, i)
	}
	seen := map[string]bool{}
	for _, it := range items {
		name := it.OutputName()
		if name == "" {
			return nil, &siddhiql.Error{Pos: it.Pos, Msg: "select expression needs 'as <name>'"}
		}
		if seen[name] {
			return nil, &siddhiql.Error{Pos: it.Pos, Msg: fmt.Sprintf("output name %q is used twice", name)}
		}
		seen[name] = true
		c, err := expr.Compile(it.Expr, sc)
		if err != nil {
			return nil, err
		}
		s.items = append(s.items, c.Eval)
		s.columns = append(s.columns, Column{Name: name, Type: c.Type})
	}
	if q.Having != nil {
		// having may name output columns: they stand for their select expressions.
		named := map[string]siddhiql.Expr{}
		for _, it := range items {
			named[it.OutputName()] = it.Expr
		}
		c, err := expr.Compile(Substitute(q.Having, named), sc)
		if err != nil {
			return nil, err
		}
		if c.Type != siddhiql.TypeBool {
			return nil, expr.Errorf(q.Having, "having must be a bool, got %s", c.Type)
		}
		s.having = c.Eval
	}
	hidden := 0
	for _, o := range q.OrderBy {
		i := -1
		if o.Var.Stream == "" {
			i = slices.IndexFunc(s.columns, func(c Column) bool { return c.Name == o.Var.Name })
		}
		if i >= 0 {
			s.orderBy = append(s.orderBy, orderKey{col: i, desc: o.Desc, input: -1})
			continue
		}
		in, _, err := fields.Var(o.Var)
		if err != nil {
			return nil, expr.Errorf(o.Var, "order by %q: neither a selected column nor an attribute of the aggregation", o.Var.Name)
		}
		s.orderBy = append(s.orderBy, orderKey{col: len(s.columns) + hidden, desc: o.Desc, input: in})
		hidden++
	}
	var err error
	if s.limit, err = count(q.Limit, "limit", -1); err != nil {
		return nil, err
	}
	if s.offset, err = count(q.Offset, "offset", 0); err != nil {
		return nil, err
	}
	return s, nil
}

func count(e siddhiql.Expr, what string, def int64) (int64, error) {
	if e == nil {
		return def, nil
	}
	v, err := constant(e)
	if err != nil {
		return 0, err
	}
	if (v.T != siddhiql.TypeInt && v.T != siddhiql.TypeLong) || v.I < 0 {
		return 0, expr.Errorf(e, "%s must be a non-negative integer, got %s", what, v)
	}
	return v.I, nil
}

// Substitute returns e with every unqualified variable named in named replaced by its
// expression. e itself is not changed.
func Substitute(e siddhiql.Expr, named map[string]siddhiql.Expr) siddhiql.Expr {
	switch n := e.(type) {
	case *siddhiql.Variable:
		if r, ok := named[n.Name]; ok && n.Stream == "" {
			if rv, ok := r.(*siddhiql.Variable); !ok || rv.Name != n.Name {
				return r
			}
		}
	case *siddhiql.Binary:
		c := *n
		c.L, c.R = Substitute(n.L, named), Substitute(n.R, named)
		return &c
	case *siddhiql.Unary:
		c := *n
		c.X = Substitute(n.X, named)
		return &c
	case *siddhiql.IsNull:
		c := *n
		c.X = Substitute(n.X, named)
		return &c
	case *siddhiql.Call:
		c := *n
		c.Args = make([]siddhiql.Expr, len(n.Args))
		for i, a := range n.Args {
			c.Args[i] = Substitute(a, named)
		}
		return &c
	}
	return e
}

// run applies the selector to the rows, which are in the base scope.
func (s *selector) run(rows []expr.Row) ([][]expr.Value, error) {
	aggregating := len(s.calls) > 0 || len(s.group) > 0
	var groups []*selGroup
	if aggregating {
		byKey := map[string]*selGroup{}
		var kb []byte
		for _, r := range rows {
			kb = kb[:0]
			for _, i := range s.group {
				kb = r[i].Key(kb)
			}
			g := byKey[string(kb)]
			if g == nil {
				g = &selGroup{acc: make([]acc, len(s.calls))}
				byKey[string(kb)] = g
				groups = append(groups, g)
			}
			g.last = r
			for i, c := range s.calls {
				g.acc[i].add(c, r)
			}
		}
		if len(rows) == 0 && len(s.group) == 0 && len(s.calls) > 0 {
			// An aggregate over nothing still answers one row, as SQL does.
			groups = append(groups, &selGroup{acc: make([]acc, len(s.calls)), last: make(expr.Row, s.width)})
		}
	} else {
		for _, r := range rows {
			groups = append(groups, &selGroup{last: r})
		}
	}
	var out [][]expr.Value
	for _, g := range groups {
		full := make(expr.Row, s.width, s.width+len(s.calls)+len(s.columns))
		copy(full, g.last)
		for i, c := range s.calls {
			full = append(full, g.acc[i].value(c))
		}
		res := make([]expr.Value, len(s.items), len(s.items)+len(s.orderBy))
		for i, it := range s.items {
			res[i] = it(full)
		}
		for _, k := range s.orderBy {
			if k.input >= 0 {
				res = append(res, full[k.input]) // dropped after sorting
			}
		}
		if s.having != nil && !s.having(full).Truth() {
			continue
		}
		out = append(out, res)
	}
	if len(s.orderBy) > 0 {
		slices.SortStableFunc(out, func(a, b []expr.Value) int {
			for _, k := range s.orderBy {
				c := compareValues(a[k.col], b[k.col])
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
	for i := range out {
		out[i] = out[i][:len(s.items)]
	}
	if s.offset > 0 {
		out = out[min(int(s.offset), len(out)):]
	}
	if s.limit >= 0 && int(s.limit) < len(out) {
		out = out[:s.limit]
	}
	if out == nil {
		out = [][]expr.Value{}
	}
	return out, nil
}

type selGroup struct {
	last expr.Row
	acc  []acc
}

// acc accumulates one aggregate function over a group's rows.
type acc struct {
	v   expr.Value
	n   int64
	set map[string]struct{}
}

func (a *acc) add(c *call, r expr.Row) {
	if c.fn == "count" {
		a.n++
		return
	}
	v := c.arg(r)
	if v.IsNull() {
		return
	}
	switch c.fn {
	case "sum", "avg":
		if a.v.IsNull() {
			a.v = expr.Value{T: c.typ}
		}
		if c.typ == siddhiql.TypeDouble {
			a.v.F += v.AsFloat()
		} else {
			a.v.I += v.I
		}
		a.n++
	case "min":
		if a.v.IsNull() || less(v, a.v) {
			a.v = v
		}
	case "max":
		if a.v.IsNull() || less(a.v, v) {
			a.v = v
		}
	case "distinctcount":
		if a.set == nil {
			a.set = map[string]struct{}{}
		}
		a.set[string(v.Key(nil))] = struct{}{}
	}
}

func (a *acc) value(c *call) expr.Value {
	switch c.fn {
	case "count":
		return expr.Long(a.n)
	case "avg":
		if a.n == 0 {
			return expr.Null
		}
		return expr.Double(a.v.AsFloat() / float64(a.n))
	case "distinctcount":
		return expr.Long(int64(len(a.set)))
	}
	return a.v
}

// compareValues orders values for `order by`: nulls first, numbers numerically, strings
// and others by their text.
func compareValues(a, b expr.Value) int {
	switch {
	case a.IsNull() && b.IsNull():
		return 0
	case a.IsNull():
		return -1
	case b.IsNull():
		return 1
	case a.T.Numeric() && b.T.Numeric():
		if less(a, b) {
			return -1
		}
		if less(b, a) {
			return 1
		}
		return 0
	}
	return strings.Compare(a.String(), b.String())
}
