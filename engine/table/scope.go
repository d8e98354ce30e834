package table

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// Side is one part of a combined row: the names that qualify its attributes (a stream or
// table name, an alias) and its attributes.
type Side struct {
	Names []string
	Attrs []siddhiql.Attribute
}

func (s *Side) named(q string) bool { return slices.Contains(s.Names, q) }

func (s *Side) index(name string) int {
	for i, a := range s.Attrs {
		if a.Name == name {
			return i
		}
	}
	return -1
}

// Pair is an expr.Scope over a combined row: Left's attributes, then Right's. A qualified
// name (`T.x`) reads the side it names; an unqualified one reads the side that has it. When
// both sides have it, PreferLeft picks the left side (a table condition reads the event
// first, as Siddhi does); otherwise the name is ambiguous and an error.
type Pair struct {
	Left, Right Side
	PreferLeft  bool
	// What names the construct in messages ("join", "update condition", ...).
	What string
}

// Var implements expr.Scope.
func (p *Pair) Var(v *siddhiql.Variable) (int, siddhiql.Type, error) {
	nl := len(p.Left.Attrs)
	if v.Stream != "" {
		var s *Side
		off := 0
		switch {
		case p.Left.named(v.Stream) && p.Right.named(v.Stream):
			return 0, 0, &siddhiql.Error{Pos: v.Pos, Msg: fmt.Sprintf("%s: %s names both inputs: give them aliases (as a, as b) and qualify with those", p.What, v.Stream)}
		case p.Left.named(v.Stream):
			s = &p.Left
		case p.Right.named(v.Stream):
			s, off = &p.Right, nl
		default:
			return 0, 0, &siddhiql.Error{Pos: v.Pos, Msg: fmt.Sprintf("%s: unknown stream or table %q in %s.%s: it reads %s", p.What, v.Stream, v.Stream, v.Name, p.names())}
		}
		i := s.index(v.Name)
		if i < 0 {
			return 0, 0, &siddhiql.Error{Pos: v.Pos, Msg: fmt.Sprintf("%s: %s has no attribute %q", p.What, v.Stream, v.Name)}
		}
		return off + i, s.Attrs[i].Type, nil
	}
	li, ri := p.Left.index(v.Name), p.Right.index(v.Name)
	switch {
	case li >= 0 && (ri < 0 || p.PreferLeft):
		return li, p.Left.Attrs[li].Type, nil
	case ri >= 0 && li < 0:
		return nl + ri, p.Right.Attrs[ri].Type, nil
	case li >= 0:
		return 0, 0, &siddhiql.Error{Pos: v.Pos, Msg: fmt.Sprintf("%s: attribute %q is in both %s and %s: qualify it (%s.%s)", p.What, v.Name, p.Left.Names[0], p.Right.Names[0], p.Left.Names[len(p.Left.Names)-1], v.Name)}
	}
	return 0, 0, &siddhiql.Error{Pos: v.Pos, Msg: fmt.Sprintf("%s: unknown attribute %q: neither %s has it", p.What, v.Name, p.names())}
}

func (p *Pair) names() string {
	return strings.Join([]string{p.Left.Names[0], p.Right.Names[0]}, " nor ")
}

// Call implements expr.Scope: functions are left to expr.
func (p *Pair) Call(*siddhiql.Call) (int, siddhiql.Type, bool, error) { return 0, 0, false, nil }

// Cond is a compiled bool condition over a combined row.
type Cond struct {
	eval expr.Eval
	buf  expr.Row
}

// CompileCond compiles e (which must be bool) over p. A nil e is a condition that always
// holds.
func CompileCond(e siddhiql.Expr, p *Pair) (*Cond, error) {
	if e == nil {
		return &Cond{}, nil
	}
	c, err := expr.Compile(e, p)
	if err != nil {
		return nil, err
	}
	if c.Type != siddhiql.TypeBool {
		return nil, &siddhiql.Error{Pos: e.Position(), Msg: fmt.Sprintf("%s needs a bool condition, got %s", p.What, c.Type)}
	}
	return &Cond{eval: c.Eval}, nil
}

// Holds evaluates the condition over left and right joined.
func (c *Cond) Holds(left, right expr.Row) bool {
	if c.eval == nil {
		return true
	}
	c.buf = append(append(c.buf[:0], left...), right...)
	return c.eval(c.buf).Truth()
}

// Concat returns left and right joined in a new row; a nil side gives width nulls.
func Concat(left expr.Row, nl int, right expr.Row, nr int) expr.Row {
	out := make(expr.Row, nl+nr)
	copy(out, left)
	copy(out[nl:], right)
	return out
}
