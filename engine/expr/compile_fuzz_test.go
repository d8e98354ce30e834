package expr

import (
	"math"
	"testing"

	"github.com/tally-db/tally/siddhiql"
)

// FuzzCompileExpr parses, compiles and evaluates arbitrary expressions over a row of every
// type: no input may panic or overflow the stack, and a compiled expression's value has its
// declared type (or is null).
func FuzzCompileExpr(f *testing.F) {
	attrs := []siddhiql.Attribute{
		{Name: "s", Type: siddhiql.TypeString}, {Name: "i", Type: siddhiql.TypeInt},
		{Name: "l", Type: siddhiql.TypeLong}, {Name: "f", Type: siddhiql.TypeFloat},
		{Name: "d", Type: siddhiql.TypeDouble}, {Name: "b", Type: siddhiql.TypeBool},
	}
	rows := []Row{
		{String("x"), Int(-2147483648), Long(-9223372036854775808), Float(0), Double(math.Copysign(0, -1)), Bool(true)},
		{Null, Null, Null, Null, Null, Null},
		{String(""), Int(0), Long(0), Float(1), Double(1e308), Bool(false)},
	}
	for _, s := range []string{
		"i + l * 2 - d / f % 3", "not (b and i > 3) or s == 'x'", "-(-(-l))", "l / 0 + i % 0",
		"-2147483648 - i", "(((((d)))))", "s != s and 1.5f < 2", "i == l and f >= d",
		"v+v+v", "1 min 30 sec + l", "-9223372036854775808L / -1L",
	} {
		f.Add(s)
	}
	scope := &Fields{Stream: "S", Attrs: attrs}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := siddhiql.ParseExpr(src)
		if err != nil {
			return
		}
		c, err := Compile(e, scope)
		if err != nil {
			return
		}
		for _, r := range rows {
			v := c.Eval(r)
			if !v.IsNull() && v.T != c.Type {
				t.Fatalf("%q is %s but evaluated to a %s", src, c.Type, v.T)
			}
		}
	})
}
