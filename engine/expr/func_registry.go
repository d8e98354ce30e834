package expr

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tally-db/tally/siddhiql"
)

// fn is a scalar function: how many arguments it takes and how to build its evaluator
// from the compiled arguments.
type fn struct {
	min, max int // argument count; max -1 means any number from min
	// stamped marks functions that read the Env per evaluation (time, UUID): they are
	// never folded into constants and need an Env.
	stamped bool
	// stampedBare marks functions that read the Env when called without arguments
	// (time:timestampInMilliseconds()).
	stampedBare bool
	// live marks functions whose answer depends on node configuration that is set after
	// compiling (the GeoIP database): never folded into constants.
	live  bool
	build func(c *siddhiql.Call, args []*Compiled, env *Env) (*Compiled, error)
}

// funcs maps a lower-case function name ("ifthenelse", "str:concat") to its definition.
// Each func_*.go file registers its functions in init.
var funcs = map[string]fn{}

func register(name string, f fn) {
	k := strings.ToLower(name)
	if _, dup := funcs[k]; dup {
		panic("expr: function registered twice: " + name)
	}
	funcs[k] = f
}

// FuncNames lists the scalar functions, sorted, as messages and docs spell them.
func FuncNames() []string {
	names := make([]string, 0, len(funcs))
	for k := range funcs {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func callName(c *siddhiql.Call) string {
	if c.Namespace != "" {
		return c.Namespace + ":" + c.Name
	}
	return c.Name
}

// compileCall compiles a scalar function call.
func compileCall(c *siddhiql.Call, scope Scope) (*Compiled, error) {
	name := callName(c)
	f, ok := funcs[strings.ToLower(name)]
	if !ok {
		return nil, Errorf(c, "unknown function %s(): see the README's list of functions (aggregates are sum, count, avg, min, max and distinctCount)", name)
	}
	if n := len(c.Args); n < f.min || (f.max >= 0 && n > f.max) {
		want := fmt.Sprintf("%d", f.min)
		switch {
		case f.max < 0:
			want = fmt.Sprintf("at least %d", f.min)
		case f.max != f.min:
			want = fmt.Sprintf("%d to %d", f.min, f.max)
		}
		return nil, Errorf(c, "%s() takes %s argument(s), got %d", name, want, n)
	}
	env := envOf(scope)
	stamped := f.stamped || (f.stampedBare && len(c.Args) == 0)
	if stamped && env == nil {
		return nil, Errorf(c, "%s() reads the stamped time of the event, which is not available here", name)
	}
	args := make([]*Compiled, len(c.Args))
	allConst := true
	for i, a := range c.Args {
		x, err := Compile(a, scope)
		if err != nil {
			return nil, err
		}
		args[i] = x
		allConst = allConst && x.Const
	}
	out, err := f.build(c, args, env)
	if err != nil {
		return nil, err
	}
	out.Const = allConst && !stamped && !f.live
	return fold(out, nil)
}

// compileIsNull compiles `x is null`.
func compileIsNull(n *siddhiql.IsNull, scope Scope) (*Compiled, error) {
	x, err := Compile(n.X, scope)
	if err != nil {
		return nil, err
	}
	return fold(&Compiled{Type: siddhiql.TypeBool, Const: x.Const, Eval: func(r Row) Value { return Bool(x.Eval(r).IsNull()) }}, nil)
}

// argErr reports a wrongly typed argument i (0-based) of call c.
func argErr(c *siddhiql.Call, i int, want string, got siddhiql.Type) error {
	return Errorf(c.Args[i], "argument %d of %s() must be %s, got %s", i+1, callName(c), want, got)
}

// needType checks that argument i has one of the types ts.
func needType(c *siddhiql.Call, args []*Compiled, i int, ts ...siddhiql.Type) error {
	if slices.Contains(ts, args[i].Type) {
		return nil
	}
	var names []string
	for _, t := range ts {
		names = append(names, t.String())
	}
	return argErr(c, i, strings.Join(names, " or "), args[i].Type)
}

// constString is argument i as a string constant.
func constString(c *siddhiql.Call, args []*Compiled, i int, what string) (string, error) {
	if args[i].Type != siddhiql.TypeString || !args[i].Const {
		return "", Errorf(c.Args[i], "argument %d of %s() (%s) must be a string constant", i+1, callName(c), what)
	}
	v := args[i].Eval(nil)
	if v.IsNull() {
		return "", Errorf(c.Args[i], "argument %d of %s() (%s) must not be null", i+1, callName(c), what)
	}
	return v.S, nil
}

// result builds a Compiled of type t.
func result(t siddhiql.Type, ev Eval) (*Compiled, error) {
	return &Compiled{Type: t, Eval: ev}, nil
}

// str1 is an evaluator of f over a string argument; a null argument gives null (where
// Siddhi's function would throw and drop the event, Tally answers null).
func str1(args []*Compiled, f func(string) Value) Eval {
	a := args[0].Eval
	return func(r Row) Value {
		x := a(r)
		if x.IsNull() {
			return Null
		}
		return f(x.S)
	}
}
