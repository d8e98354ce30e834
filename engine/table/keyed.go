package table

import (
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// Keyed is a condition over (event, table row) that pins the table's primary key: a
// conjunction holding `T.k == e` for every primary key attribute k, where e reads only the
// event and has k's type. Such a condition can match at most the one row with that key, so
// it is looked up instead of scanned.
type Keyed struct {
	t         *Table
	cond      *Cond
	keys      []expr.Eval // over the event's part of the joined row, in primary key order
	tableLeft bool        // the table is the pair's left side, the event its right
	eventOff  int         // where the event starts in the joined row
	row       expr.Row    // scratch joined row when the event is not at offset 0
	buf       []byte
}

// KeyedCond returns a Keyed for cond (compiled from e over p), or nil when e does not pin
// t's primary key. t is p's right side, or its left side when tableLeft is set.
func KeyedCond(t *Table, cond *Cond, e siddhiql.Expr, p *Pair, tableLeft bool) *Keyed {
	if len(t.pk) == 0 || e == nil {
		return nil
	}
	nl := len(p.Left.Attrs)
	tableOff, eventLo, eventHi := nl, 0, nl
	if tableLeft {
		tableOff, eventLo, eventHi = 0, nl, nl+len(p.Right.Attrs)
	}
	keys := make([]expr.Eval, len(t.pk))
	event := &sideOnly{p: p, lo: eventLo, hi: eventHi}
	var visit func(e siddhiql.Expr)
	visit = func(e siddhiql.Expr) {
		b, ok := e.(*siddhiql.Binary)
		if !ok {
			return
		}
		switch b.Op {
		case siddhiql.OpAnd:
			visit(b.L)
			visit(b.R)
		case siddhiql.OpEq:
			for _, sides := range [2][2]siddhiql.Expr{{b.L, b.R}, {b.R, b.L}} {
				v, ok := sides[0].(*siddhiql.Variable)
				if !ok {
					continue
				}
				idx, _, err := p.Var(v)
				if err != nil || idx < tableOff || idx >= tableOff+len(t.Def.Attributes) {
					continue
				}
				for k, col := range t.pk {
					if idx-tableOff != col || keys[k] != nil {
						continue
					}
					c, err := expr.Compile(sides[1], event)
					if err == nil && c.Type == t.Def.Attributes[col].Type {
						keys[k] = c.Eval
					}
				}
			}
		}
	}
	visit(e)
	for _, k := range keys {
		if k == nil {
			return nil
		}
	}
	k := &Keyed{t: t, cond: cond, keys: keys, tableLeft: tableLeft, eventOff: eventLo}
	if tableLeft {
		k.row = make(expr.Row, eventHi)
	}
	return k
}

// sideOnly is the pair's scope restricted to the attributes in [lo, hi): the event's side.
type sideOnly struct {
	p      *Pair
	lo, hi int
}

// Var implements expr.Scope: names on the table's side are refused.
func (s *sideOnly) Var(v *siddhiql.Variable) (int, siddhiql.Type, error) {
	idx, t, err := s.p.Var(v)
	if err == nil && (idx < s.lo || idx >= s.hi) {
		return 0, 0, &siddhiql.Error{Pos: v.Pos, Msg: "reads the table"}
	}
	return idx, t, err
}

// Call implements expr.Scope: functions are left to expr.
func (s *sideOnly) Call(*siddhiql.Call) (int, siddhiql.Type, bool, error) { return 0, 0, false, nil }

// Match returns the position of the row matching the condition for event ev, or -1.
func (k *Keyed) Match(ev expr.Row) int {
	row := ev
	if k.tableLeft {
		copy(k.row[k.eventOff:], ev)
		row = k.row
	}
	k.buf = k.buf[:0]
	for _, eval := range k.keys {
		v := eval(row)
		if v.IsNull() {
			return -1 // null equals nothing
		}
		k.buf = v.Key(k.buf)
	}
	i, ok := k.t.keys[string(k.buf)]
	if !ok {
		return -1
	}
	l, r := ev, k.t.rows[i]
	if k.tableLeft {
		l, r = r, ev
	}
	if !k.cond.Holds(l, r) {
		return -1
	}
	return i
}
