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
	t    *Table
	cond *Cond
	keys []expr.Eval // over the event row, in primary key order
	buf  []byte
}

// KeyedCond returns a Keyed for cond (compiled from e over p, p.Right being t's row), or
// nil when e does not pin t's primary key.
func KeyedCond(t *Table, cond *Cond, e siddhiql.Expr, p *Pair) *Keyed {
	if len(t.pk) == 0 || e == nil {
		return nil
	}
	nl := len(p.Left.Attrs)
	keys := make([]expr.Eval, len(t.pk))
	left := &leftOnly{p}
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
				if err != nil || idx < nl {
					continue
				}
				for k, col := range t.pk {
					if idx-nl != col || keys[k] != nil {
						continue
					}
					c, err := expr.Compile(sides[1], left)
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
	return &Keyed{t: t, cond: cond, keys: keys}
}

// leftOnly is the pair's scope restricted to the left side (the event).
type leftOnly struct{ p *Pair }

func (l *leftOnly) Var(v *siddhiql.Variable) (int, siddhiql.Type, error) {
	idx, t, err := l.p.Var(v)
	if err == nil && idx >= len(l.p.Left.Attrs) {
		return 0, 0, &siddhiql.Error{Pos: v.Pos, Msg: "reads the table"}
	}
	return idx, t, err
}

func (l *leftOnly) Call(*siddhiql.Call) (int, siddhiql.Type, bool, error) { return 0, 0, false, nil }

// Match returns the position of the row matching the condition for event left, or -1.
func (k *Keyed) Match(left expr.Row) int {
	k.buf = k.buf[:0]
	for _, ev := range k.keys {
		v := ev(left)
		if v.IsNull() {
			return -1 // null equals nothing
		}
		k.buf = v.Key(k.buf)
	}
	i, ok := k.t.keys[string(k.buf)]
	if !ok || !k.cond.Holds(left, k.t.rows[i]) {
		return -1
	}
	return i
}
