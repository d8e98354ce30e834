package window

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// Hand-built ASTs keep these tests independent of the parser. Every node gets a
// distinct position so error positions can be checked.

var posN int

func np() siddhiql.Pos { posN++; return siddhiql.Pos{Line: 1, Col: posN} }

func vr(name string) *siddhiql.Variable { return &siddhiql.Variable{Pos: np(), Name: name} }

func il(i int64) *siddhiql.Literal {
	return &siddhiql.Literal{Pos: np(), Type: siddhiql.TypeInt, Int: i}
}

func ll(i int64) *siddhiql.Literal {
	return &siddhiql.Literal{Pos: np(), Type: siddhiql.TypeLong, Int: i}
}

func tl(ms int64) *siddhiql.Literal {
	return &siddhiql.Literal{Pos: np(), Type: siddhiql.TypeLong, Int: ms, Time: true}
}

func bl(b bool) *siddhiql.Literal {
	return &siddhiql.Literal{Pos: np(), Type: siddhiql.TypeBool, Bool: b}
}

func sl(s string) *siddhiql.Literal {
	return &siddhiql.Literal{Pos: np(), Type: siddhiql.TypeString, Str: s}
}

func dl(f float64) *siddhiql.Literal {
	return &siddhiql.Literal{Pos: np(), Type: siddhiql.TypeDouble, Float: f}
}

func call(name string, args ...siddhiql.Expr) *siddhiql.Call {
	return &siddhiql.Call{Pos: np(), Name: name, Args: args}
}

func bin(op siddhiql.Op, l, r siddhiql.Expr) *siddhiql.Binary {
	return &siddhiql.Binary{Pos: np(), Op: op, L: l, R: r}
}

func win(name string, args ...siddhiql.Expr) *siddhiql.Window {
	return &siddhiql.Window{Pos: np(), Name: name, Args: args}
}

func out(e siddhiql.Expr, alias string) siddhiql.OutputAttr {
	return siddhiql.OutputAttr{Pos: np(), Expr: e, Alias: alias}
}

// stream S (symbol string, price double, q long, ts long)
var stockStream = &siddhiql.StreamDef{Name: "S", Attributes: []siddhiql.Attribute{
	{Name: "symbol", Type: siddhiql.TypeString},
	{Name: "price", Type: siddhiql.TypeDouble},
	{Name: "q", Type: siddhiql.TypeLong},
	{Name: "ts", Type: siddhiql.TypeLong},
}}

// ev is an event of S.
func ev(sym string, q int64) expr.Row { return evp(sym, float64(q), q, 0) }

func evt(sym string, q, ts int64) expr.Row { return evp(sym, float64(q), q, ts) }

func evp(sym string, price float64, q, ts int64) expr.Row {
	return expr.Row{expr.String(sym), expr.Double(price), expr.Long(q), expr.Long(ts)}
}

// step is one call: Process (events non-nil) or Advance.
type step struct {
	now    int64
	events []expr.Row
}

func adv(now int64) step                 { return step{now: now} }
func at(now int64, evs ...expr.Row) step { return step{now: now, events: evs} }

func run(q *Query, st step, emit func(Output)) {
	if st.events == nil {
		q.Advance(st.now, emit)
	} else {
		q.Process(st.now, st.events, emit)
	}
}

// fmtOut renders an output as "C@10 A 30" (kind, time, values).
func fmtOut(o Output) string {
	var b strings.Builder
	if o.Kind == Current {
		b.WriteString("C")
	} else {
		b.WriteString("E")
	}
	fmt.Fprintf(&b, "@%d", o.Time)
	for _, v := range o.Row {
		b.WriteString(" ")
		if v.T == siddhiql.TypeString {
			b.WriteString(v.S)
		} else {
			b.WriteString(v.String())
		}
	}
	return b.String()
}

func runAll(t *testing.T, q *Query, steps []step) []string {
	t.Helper()
	var got []string
	for _, st := range steps {
		run(q, st, func(o Output) { got = append(got, fmtOut(o)) })
	}
	return got
}

func mustCompile(t *testing.T, q *siddhiql.Query) *Query {
	t.Helper()
	rq, err := Compile(q, stockStream)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return rq
}

// query builds `from S<w> select <sel> group by <gb> having <h> insert <o> events into O`.
func query(w *siddhiql.Window, o siddhiql.OutputEvents, sel []siddhiql.OutputAttr, gb []string, having siddhiql.Expr) *siddhiql.Query {
	q := &siddhiql.Query{Pos: np(), From: "S", Window: w, Select: sel, Having: having, Output: o, Into: "O"}
	if len(sel) == 0 {
		q.SelectAll = true
	}
	for _, g := range gb {
		q.GroupBy = append(q.GroupBy, vr(g))
	}
	return q
}

func symQ() []siddhiql.OutputAttr {
	return []siddhiql.OutputAttr{out(vr("symbol"), ""), out(vr("q"), "")}
}

func symSum() []siddhiql.OutputAttr {
	return []siddhiql.OutputAttr{out(vr("symbol"), ""), out(call("sum", vr("q")), "t")}
}
