package expr

import (
	"fmt"
	"math"
	"strings"

	"github.com/tally-db/tally/siddhiql"
)

// Eval computes an expression over a row.
type Eval func(row Row) Value

// Compiled is an expression ready to run, with its result type.
type Compiled struct {
	Type siddhiql.Type
	Eval Eval
	// Const is set when the expression reads no row value; Eval(nil) gives the constant.
	Const bool
}

// Scope resolves the names an expression uses to positions in the row it will run over.
type Scope interface {
	// Var resolves an attribute reference to a row index and type.
	Var(v *siddhiql.Variable) (idx int, t siddhiql.Type, err error)
	// Call resolves a function call the scope provides itself (aggregate functions held in
	// extra row slots, say). handled is false when the scope leaves the call to expr.
	Call(c *siddhiql.Call) (idx int, t siddhiql.Type, handled bool, err error)
}

// Errorf makes a *siddhiql.Error at the position of node n.
func Errorf(n siddhiql.Expr, format string, args ...any) error {
	return &siddhiql.Error{Pos: n.Position(), Msg: fmt.Sprintf(format, args...)}
}

// AggregateFuncs are the aggregate function names Siddhi's selectors know (lower case).
var AggregateFuncs = map[string]bool{"sum": true, "count": true, "avg": true, "min": true, "max": true, "distinctcount": true}

// IsAggregate reports whether c calls an aggregate function.
func IsAggregate(c *siddhiql.Call) bool {
	return c.Namespace == "" && AggregateFuncs[strings.ToLower(c.Name)]
}

// Compile type-checks e against scope and returns its evaluator. It recurses once per
// level of e, and the evaluator once per operator on the way to a leaf: the parser bounds
// both by siddhiql.MaxExprNodes, and Compile refuses anything deeper.
func Compile(e siddhiql.Expr, scope Scope) (*Compiled, error) {
	return compile(e, scope, 0)
}

func compile(e siddhiql.Expr, scope Scope, depth int) (*Compiled, error) {
	if depth > siddhiql.MaxExprNodes {
		return nil, Errorf(e, "expression nested too deeply (more than %d levels)", siddhiql.MaxExprNodes)
	}
	switch n := e.(type) {
	case *siddhiql.Literal:
		v := literal(n)
		return &Compiled{Type: v.T, Const: true, Eval: func(Row) Value { return v }}, nil
	case *siddhiql.Variable:
		idx, t, err := scope.Var(n)
		if err != nil {
			return nil, err
		}
		return &Compiled{Type: t, Eval: func(r Row) Value { return r[idx] }}, nil
	case *siddhiql.Call:
		idx, t, handled, err := scope.Call(n)
		if err != nil {
			return nil, err
		}
		if handled {
			return &Compiled{Type: t, Eval: func(r Row) Value { return r[idx] }}, nil
		}
		if IsAggregate(n) {
			return nil, Errorf(n, "aggregate function %s() is not allowed here", n.Name)
		}
		if c, ok, err := compileCoordination(n); ok {
			return c, err
		}
		return compileCall(n, scope)
	case *siddhiql.IsNull:
		return compileIsNull(n, scope)
	case *siddhiql.In:
		return compileIn(n, scope)
	case *siddhiql.Unary:
		x, err := compile(n.X, scope, depth+1)
		if err != nil {
			return nil, err
		}
		return fold(compileUnary(n, x))
	case *siddhiql.Binary:
		l, err := compile(n.L, scope, depth+1)
		if err != nil {
			return nil, err
		}
		r, err := compile(n.R, scope, depth+1)
		if err != nil {
			return nil, err
		}
		return fold(compileBinary(n, l, r))
	}
	return nil, Errorf(e, "unsupported expression %T", e)
}

// fold evaluates constant expressions once.
func fold(c *Compiled, err error) (*Compiled, error) {
	if err != nil || !c.Const {
		return c, err
	}
	v := c.Eval(nil)
	return &Compiled{Type: c.Type, Const: true, Eval: func(Row) Value { return v }}, nil
}

func literal(n *siddhiql.Literal) Value {
	switch n.Type {
	case siddhiql.TypeString:
		return String(n.Str)
	case siddhiql.TypeInt:
		return Value{T: siddhiql.TypeInt, I: n.Int}
	case siddhiql.TypeLong:
		return Long(n.Int)
	case siddhiql.TypeFloat:
		return Value{T: siddhiql.TypeFloat, F: n.Float}
	case siddhiql.TypeDouble:
		return Double(n.Float)
	case siddhiql.TypeBool:
		return Bool(n.Bool)
	}
	return Null
}

func compileUnary(n *siddhiql.Unary, x *Compiled) (*Compiled, error) {
	switch n.Op {
	case siddhiql.OpNot:
		if x.Type != siddhiql.TypeBool {
			return nil, Errorf(n, "'not' needs a bool operand, got %s", x.Type)
		}
		return &Compiled{Type: siddhiql.TypeBool, Const: x.Const, Eval: func(r Row) Value {
			v := x.Eval(r)
			if v.IsNull() {
				return Null
			}
			return Bool(v.I == 0)
		}}, nil
	case siddhiql.OpNeg:
		if !x.Type.Numeric() {
			return nil, Errorf(n, "unary '-' needs a number, got %s", x.Type)
		}
		return &Compiled{Type: x.Type, Const: x.Const, Eval: func(r Row) Value {
			v := x.Eval(r)
			v.I, v.F = -v.I, -v.F
			if v.T == siddhiql.TypeInt {
				v.I = int64(int32(v.I))
			}
			return v
		}}, nil
	}
	return nil, Errorf(n, "unsupported unary operator %s", n.Op)
}

// Promote is the result type of arithmetic on a and b, as Siddhi types it: double if either
// is double, then float, then long, else int.
func Promote(a, b siddhiql.Type) siddhiql.Type {
	switch {
	case a == siddhiql.TypeDouble || b == siddhiql.TypeDouble:
		return siddhiql.TypeDouble
	case a == siddhiql.TypeFloat || b == siddhiql.TypeFloat:
		return siddhiql.TypeFloat
	case a == siddhiql.TypeLong || b == siddhiql.TypeLong:
		return siddhiql.TypeLong
	}
	return siddhiql.TypeInt
}

func compileBinary(n *siddhiql.Binary, l, r *Compiled) (*Compiled, error) {
	c := &Compiled{Const: l.Const && r.Const}
	switch n.Op {
	case siddhiql.OpAnd, siddhiql.OpOr:
		if l.Type != siddhiql.TypeBool || r.Type != siddhiql.TypeBool {
			return nil, Errorf(n, "'%s' needs bool operands, got %s and %s", n.Op, l.Type, r.Type)
		}
		c.Type = siddhiql.TypeBool
		if n.Op == siddhiql.OpAnd {
			c.Eval = func(row Row) Value { return Bool(l.Eval(row).Truth() && r.Eval(row).Truth()) }
		} else {
			c.Eval = func(row Row) Value { return Bool(l.Eval(row).Truth() || r.Eval(row).Truth()) }
		}
		return c, nil
	case siddhiql.OpAdd, siddhiql.OpSub, siddhiql.OpMul, siddhiql.OpDiv, siddhiql.OpMod:
		if !l.Type.Numeric() || !r.Type.Numeric() {
			return nil, Errorf(n, "'%s' needs numbers, got %s and %s", n.Op, l.Type, r.Type)
		}
		c.Type = Promote(l.Type, r.Type)
		c.Eval = arith(n.Op, c.Type, l.Eval, r.Eval)
		return c, nil
	case siddhiql.OpEq, siddhiql.OpNe, siddhiql.OpLt, siddhiql.OpLe, siddhiql.OpGt, siddhiql.OpGe:
		c.Type = siddhiql.TypeBool
		ordered := n.Op != siddhiql.OpEq && n.Op != siddhiql.OpNe
		switch {
		case l.Type.Numeric() && r.Type.Numeric():
		case ordered:
			return nil, Errorf(n, "'%s' needs numbers, got %s and %s", n.Op, l.Type, r.Type)
		case l.Type != r.Type:
			return nil, Errorf(n, "cannot compare %s with %s", l.Type, r.Type)
		}
		op := n.Op
		c.Eval = func(row Row) Value {
			a, b := l.Eval(row), r.Eval(row)
			if a.IsNull() || b.IsNull() {
				return Bool(false)
			}
			return Bool(compare(op, a, b))
		}
		return c, nil
	}
	return nil, Errorf(n, "unsupported operator %s", n.Op)
}

func compare(op siddhiql.Op, a, b Value) bool {
	var cmp int
	switch {
	case a.T.Numeric():
		if a.IsFloat() || b.IsFloat() {
			x, y := a.AsFloat(), b.AsFloat()
			switch {
			case x < y:
				cmp = -1
			case x > y:
				cmp = 1
			case x != y: // NaN: only != holds
				return op == siddhiql.OpNe
			}
		} else {
			switch {
			case a.I < b.I:
				cmp = -1
			case a.I > b.I:
				cmp = 1
			}
		}
	case a.T == siddhiql.TypeString || a.T == siddhiql.TypeObject:
		cmp = strings.Compare(a.S, b.S)
	default:
		if a.I != b.I {
			cmp = 1
		}
	}
	switch op {
	case siddhiql.OpEq:
		return cmp == 0
	case siddhiql.OpNe:
		return cmp != 0
	case siddhiql.OpLt:
		return cmp < 0
	case siddhiql.OpLe:
		return cmp <= 0
	case siddhiql.OpGt:
		return cmp > 0
	default:
		return cmp >= 0
	}
}

// arith builds the evaluator of an arithmetic operator with result type t. Integer division
// and modulo by zero give null, as a Java ArithmeticException would stop Siddhi's query;
// integer results wrap to the result type like Java's.
func arith(op siddhiql.Op, t siddhiql.Type, l, r Eval) Eval {
	if t == siddhiql.TypeFloat || t == siddhiql.TypeDouble {
		return func(row Row) Value {
			a, b := l(row), r(row)
			if a.IsNull() || b.IsNull() {
				return Null
			}
			x, y := a.AsFloat(), b.AsFloat()
			var f float64
			switch op {
			case siddhiql.OpAdd:
				f = x + y
			case siddhiql.OpSub:
				f = x - y
			case siddhiql.OpMul:
				f = x * y
			case siddhiql.OpDiv:
				f = x / y
			default:
				f = math.Mod(x, y)
			}
			if t == siddhiql.TypeFloat {
				f = float64(float32(f))
			}
			return Value{T: t, F: f}
		}
	}
	return func(row Row) Value {
		a, b := l(row), r(row)
		if a.IsNull() || b.IsNull() {
			return Null
		}
		x, y := a.I, b.I
		var i int64
		switch op {
		case siddhiql.OpAdd:
			i = x + y
		case siddhiql.OpSub:
			i = x - y
		case siddhiql.OpMul:
			i = x * y
		case siddhiql.OpDiv:
			if y == 0 {
				return Null
			}
			i = x / y
		default:
			if y == 0 {
				return Null
			}
			i = x % y
		}
		if t == siddhiql.TypeInt {
			i = int64(int32(i))
		}
		return Value{T: t, I: i}
	}
}
