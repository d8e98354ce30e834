package expr

import (
	"math"

	"github.com/tally-db/tally/siddhiql"
)

// The math: functions of siddhi-execution-math. They take any number and answer a double
// (math:round answers an int for a float and a long for a double); null in gives null out.
func init() {
	for name, f := range map[string]func(float64) float64{
		"math:abs": math.Abs, "math:floor": math.Floor, "math:sqrt": math.Sqrt,
		"math:ln": math.Log, "math:log10": math.Log10, "math:log2": math.Log2,
	} {
		register(name, fn{min: 1, max: 1, build: math1(f, false)})
	}
	register("math:ceil", fn{min: 1, max: 1, build: math1(math.Ceil, true)})
	for name, f := range map[string]func(a, b float64) float64{
		"math:power": math.Pow,
		"math:max":   javaMax,
		"math:min":   javaMin,
		"math:log": func(n, base float64) float64 {
			if base == 1 {
				return math.NaN()
			}
			return math.Log(n) / math.Log(base)
		},
	} {
		register(name, fn{min: 2, max: 2, build: math2(f)})
	}
	register("math:round", fn{min: 1, max: 1, build: buildRound})
}

// javaMax and javaMin are Java's Math.max and Math.min: NaN wins, -0.0 < 0.0.
func javaMax(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return math.Max(a, b)
}

func javaMin(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return math.Min(a, b)
}

func numArgs(c *siddhiql.Call, args []*Compiled, floatOnly bool) error {
	for i, a := range args {
		if floatOnly {
			if a.Type != siddhiql.TypeFloat && a.Type != siddhiql.TypeDouble {
				return argErr(c, i, "float or double", a.Type)
			}
		} else if !a.Type.Numeric() {
			return argErr(c, i, "int, long, float or double", a.Type)
		}
	}
	return nil
}

func math1(f func(float64) float64, floatOnly bool) func(*siddhiql.Call, []*Compiled, *Env) (*Compiled, error) {
	return func(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
		if err := numArgs(c, args, floatOnly); err != nil {
			return nil, err
		}
		a := args[0].Eval
		return result(siddhiql.TypeDouble, func(r Row) Value {
			v := a(r)
			if v.IsNull() {
				return Null
			}
			return Double(f(v.AsFloat()))
		})
	}
}

func math2(f func(a, b float64) float64) func(*siddhiql.Call, []*Compiled, *Env) (*Compiled, error) {
	return func(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
		if err := numArgs(c, args, false); err != nil {
			return nil, err
		}
		a, b := args[0].Eval, args[1].Eval
		return result(siddhiql.TypeDouble, func(r Row) Value {
			x, y := a(r), b(r)
			if x.IsNull() || y.IsNull() {
				return Null
			}
			return Double(f(x.AsFloat(), y.AsFloat()))
		})
	}
}

// buildRound is Java's Math.round: floor(x + 0.5), an int for a float, a long for a double
// (NaN gives 0, out of range saturates).
func buildRound(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
	if err := numArgs(c, args, true); err != nil {
		return nil, err
	}
	a := args[0].Eval
	if args[0].Type == siddhiql.TypeFloat {
		return result(siddhiql.TypeInt, func(r Row) Value {
			v := a(r)
			if v.IsNull() {
				return Null
			}
			return Int(int32(javaF2L(math.Floor(float64(float32(v.F))+0.5), math.MinInt32, math.MaxInt32)))
		})
	}
	return result(siddhiql.TypeLong, func(r Row) Value {
		v := a(r)
		if v.IsNull() {
			return Null
		}
		return Long(javaF2L(math.Floor(v.F+0.5), math.MinInt64, math.MaxInt64))
	})
}
