package expr

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/tally-db/tally/siddhiql"
)

// Siddhi's built-in scalar functions (no namespace).
func init() {
	register("ifThenElse", fn{min: 3, max: 3, build: buildIfThenElse})
	register("coalesce", fn{min: 1, max: -1, build: buildCoalesce})
	register("default", fn{min: 2, max: 2, build: buildDefault})
	register("cast", fn{min: 2, max: 2, build: buildCast})
	register("convert", fn{min: 2, max: 2, build: buildConvert})
	register("maximum", fn{min: 1, max: -1, build: func(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
		return buildExtreme(c, args, 1)
	}})
	register("minimum", fn{min: 1, max: -1, build: func(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
		return buildExtreme(c, args, -1)
	}})
	register("UUID", fn{min: 0, max: 0, stamped: true, build: func(_ *siddhiql.Call, _ []*Compiled, env *Env) (*Compiled, error) {
		return result(siddhiql.TypeString, func(Row) Value { return String(env.UUID()) })
	}})
	register("eventTimestamp", fn{min: 0, max: 0, stamped: true, build: func(_ *siddhiql.Call, _ []*Compiled, env *Env) (*Compiled, error) {
		return result(siddhiql.TypeLong, func(Row) Value { return Long(env.EventTime) })
	}})
	register("currentTimeMillis", fn{min: 0, max: 0, stamped: true, build: func(_ *siddhiql.Call, _ []*Compiled, env *Env) (*Compiled, error) {
		return result(siddhiql.TypeLong, func(Row) Value { return Long(env.Now) })
	}})
	for _, t := range []struct {
		name string
		typ  siddhiql.Type
	}{{"Boolean", siddhiql.TypeBool}, {"Double", siddhiql.TypeDouble}, {"Float", siddhiql.TypeFloat},
		{"Integer", siddhiql.TypeInt}, {"Long", siddhiql.TypeLong}, {"String", siddhiql.TypeString}} {
		typ := t.typ
		register("instanceOf"+t.name, fn{min: 1, max: 1, build: func(_ *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
			a := args[0].Eval
			return result(siddhiql.TypeBool, func(r Row) Value { return Bool(runtimeType(a(r)) == typ) })
		}})
	}
}

// runtimeType is the type of the value v holds: an object's JSON text counts as the
// value it spells (a string, a bool, a long or a double).
func runtimeType(v Value) siddhiql.Type {
	if v.T != siddhiql.TypeObject {
		return v.T
	}
	return objectValue(v).T
}

// objectValue is the scalar an object's JSON text spells (a JSON string, bool, or number:
// a long when integral and in range, else a double); other objects stay as they are.
func objectValue(v Value) Value {
	s := strings.TrimSpace(v.S)
	switch {
	case s == "" || s == "null":
		return Null
	case s == "true" || s == "false":
		return Bool(s == "true")
	case s[0] == '"':
		var str string
		if json.Unmarshal([]byte(s), &str) == nil {
			return String(str)
		}
	case s[0] == '-' || (s[0] >= '0' && s[0] <= '9'):
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return Long(i)
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return Double(f)
		}
	}
	return v
}

func buildIfThenElse(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
	if err := needType(c, args, 0, siddhiql.TypeBool); err != nil {
		return nil, err
	}
	if args[1].Type != args[2].Type {
		return nil, Errorf(c, "ifThenElse() needs its then and else values of the same type, got %s and %s", args[1].Type, args[2].Type)
	}
	cond, a, b := args[0].Eval, args[1].Eval, args[2].Eval
	// Only the chosen branch is evaluated, as in Siddhi (a UUID() in the other one is not
	// drawn).
	return result(args[1].Type, func(r Row) Value {
		if cond(r).Truth() {
			return a(r)
		}
		return b(r)
	})
}

func buildCoalesce(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
	for i := 1; i < len(args); i++ {
		if args[i].Type != args[0].Type {
			return nil, Errorf(c, "coalesce() needs arguments of one type, got %s and %s", args[0].Type, args[i].Type)
		}
	}
	evs := make([]Eval, len(args))
	for i, a := range args {
		evs[i] = a.Eval
	}
	return result(args[0].Type, func(r Row) Value {
		for _, e := range evs {
			if v := e(r); !v.IsNull() {
				return v
			}
		}
		return Null
	})
}

func buildDefault(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
	if _, lit := c.Args[1].(*siddhiql.Literal); !lit || !args[1].Const {
		// Siddhi takes only a literal: default(x, 1/2) is refused too.
		return nil, Errorf(c.Args[1], "the default value of default() must be a constant, found %s", siddhiql.FormatExpr(c.Args[1]))
	}
	if args[0].Type != args[1].Type {
		return nil, Errorf(c, "default() needs the attribute and the default value of the same type, got %s and %s", args[0].Type, args[1].Type)
	}
	x, d := args[0].Eval, args[1].Eval(nil)
	return result(args[0].Type, func(r Row) Value {
		if v := x(r); !v.IsNull() {
			return v
		}
		return d
	})
}

// castType reads the type name argument of cast() and convert().
func castType(c *siddhiql.Call, args []*Compiled) (siddhiql.Type, error) {
	s, err := constString(c, args, 1, "the type")
	if err != nil {
		return 0, err
	}
	switch strings.ToLower(s) {
	case "int":
		return siddhiql.TypeInt, nil
	case "long":
		return siddhiql.TypeLong, nil
	case "float":
		return siddhiql.TypeFloat, nil
	case "double":
		return siddhiql.TypeDouble, nil
	case "bool":
		return siddhiql.TypeBool, nil
	case "string":
		return siddhiql.TypeString, nil
	}
	return 0, Errorf(c.Args[1], "%s() type must be one of int, long, float, double, bool, string, got %q", c.Name, s)
}

// buildCast is cast(x, 'type'): x declared as type. As in Siddhi it converts nothing but an
// int to a long; an object is read as the scalar it holds (and a number in it takes the
// numeric type asked for). A value of another type passes through unchanged.
func buildCast(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
	t, err := castType(c, args)
	if err != nil {
		return nil, err
	}
	x := args[0].Eval
	return result(t, func(r Row) Value {
		v := x(r)
		if v.T == siddhiql.TypeObject {
			v = objectValue(v)
			if v.T.Numeric() && t.Numeric() {
				return convertValue(v, t)
			}
		}
		if v.T == siddhiql.TypeInt && t == siddhiql.TypeLong {
			return Long(v.I)
		}
		return v
	})
}

func buildConvert(c *siddhiql.Call, args []*Compiled, _ *Env) (*Compiled, error) {
	t, err := castType(c, args)
	if err != nil {
		return nil, err
	}
	x := args[0].Eval
	return result(t, func(r Row) Value { return convertValue(x(r), t) })
}

// convertValue converts v to t as Siddhi's convert() does: to string as Java prints the
// value; from a string by parsing (null when it does not parse); between numbers by Java's
// casts (truncating toward zero, saturating); a bool to 1 or 0, and a number to true only
// when it is 1. An object converts only to a string.
func convertValue(v Value, t siddhiql.Type) Value {
	if v.IsNull() {
		return Null
	}
	if t == siddhiql.TypeString {
		if v.T == siddhiql.TypeObject {
			if s := objectValue(v); s.T != siddhiql.TypeObject && !s.IsNull() {
				v = s // the scalar the object holds, as Java's toString prints it
			}
		}
		return String(javaString(v))
	}
	if v.T == siddhiql.TypeObject {
		return Null
	}
	if v.T == siddhiql.TypeString {
		s := v.S
		switch t {
		case siddhiql.TypeInt:
			i, err := strconv.ParseInt(javaIntText(s), 10, 32)
			if err != nil {
				return Null
			}
			return Int(int32(i))
		case siddhiql.TypeLong:
			i, err := strconv.ParseInt(javaIntText(s), 10, 64)
			if err != nil {
				return Null
			}
			return Long(i)
		case siddhiql.TypeFloat, siddhiql.TypeDouble:
			f, ok := parseJavaDouble(s)
			if !ok {
				return Null
			}
			if t == siddhiql.TypeFloat {
				return Float(float32(f))
			}
			return Double(f)
		case siddhiql.TypeBool:
			return Bool(strings.EqualFold(s, "true"))
		}
		return Null
	}
	if v.T == siddhiql.TypeBool {
		b := v.I != 0
		if t == siddhiql.TypeBool {
			return v
		}
		n := Value{T: siddhiql.TypeLong}
		if b {
			n.I = 1
		}
		return convertValue(n, t)
	}
	// v is numeric.
	switch t {
	case siddhiql.TypeInt:
		if v.IsFloat() {
			return Int(int32(javaF2L(v.F, math.MinInt32, math.MaxInt32)))
		}
		return Int(int32(v.I))
	case siddhiql.TypeLong:
		if v.IsFloat() {
			return Long(javaF2L(v.F, math.MinInt64, math.MaxInt64))
		}
		return Long(v.I)
	case siddhiql.TypeFloat:
		return Float(float32(v.AsFloat()))
	case siddhiql.TypeDouble:
		return Double(v.AsFloat())
	case siddhiql.TypeBool:
		return Bool(v.AsFloat() == 1)
	}
	return Null
}

// javaIntText is s as Go's ParseInt takes what Java's Integer.parseInt does: a leading
// '+' before a digit is allowed.
func javaIntText(s string) string {
	if len(s) > 1 && s[0] == '+' && s[1] >= '0' && s[1] <= '9' {
		return s[1:]
	}
	return s
}

// javaF2L is Java's (int) or (long) cast of a double: NaN is 0, out of range saturates.
func javaF2L(f float64, lo, hi int64) int64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f <= float64(lo):
		return lo
	case f >= float64(hi):
		return hi
	}
	return int64(f)
}

// parseJavaDouble parses s as Java's Double.parseDouble does for the usual forms
// (surrounding blanks, a trailing d or f, NaN and Infinity).
func parseJavaDouble(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if n := len(s); n > 1 {
		switch s[n-1] {
		case 'd', 'D', 'f', 'F':
			s = s[:n-1]
		}
	}
	switch strings.TrimLeft(s, "+-") {
	case "NaN", "Infinity":
	case "":
		return 0, false
	default:
		if strings.ContainsAny(s, "xXpP_iInN") { // hex floats and Go-only spellings
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !isRangeErr(err) {
		return 0, false
	}
	return f, true
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// javaString formats v as Java's String.valueOf does: 1.0E10 for large doubles, true,
// an object as its JSON text.
func javaString(v Value) string {
	switch v.T {
	case siddhiql.TypeString, siddhiql.TypeObject:
		return v.S
	case siddhiql.TypeBool:
		return strconv.FormatBool(v.I != 0)
	case siddhiql.TypeInt, siddhiql.TypeLong:
		return strconv.FormatInt(v.I, 10)
	case siddhiql.TypeFloat:
		return javaDouble(v.F, 32)
	case siddhiql.TypeDouble:
		return javaDouble(v.F, 64)
	}
	return "null"
}

// javaDouble formats f as Java's Double.toString (bits 64) or Float.toString (bits 32):
// the shortest digits that read back, plain between 10^-3 and 10^7, else computerized
// scientific notation (1.0E7), always with a fraction digit.
func javaDouble(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	abs := math.Abs(f)
	if abs >= 1e-3 && abs < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, bits)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'E', -1, bits) // 1.2345E+07
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	exp = strings.TrimPrefix(exp, "+")
	neg := strings.HasPrefix(exp, "-")
	exp = strings.TrimLeft(strings.TrimPrefix(exp, "-"), "0")
	if neg {
		exp = "-" + exp
	}
	return mant + "E" + exp
}

// buildExtreme is maximum (sign 1) or minimum (sign -1) of numbers of one type; null
// arguments are skipped (all null gives null).
func buildExtreme(c *siddhiql.Call, args []*Compiled, sign int) (*Compiled, error) {
	for i, a := range args {
		if !a.Type.Numeric() {
			return nil, argErr(c, i, "int, long, float or double", a.Type)
		}
		if a.Type != args[0].Type {
			return nil, Errorf(c, "%s() needs all arguments of one type, got %s and %s", c.Name, args[0].Type, a.Type)
		}
	}
	evs := make([]Eval, len(args))
	for i, a := range args {
		evs[i] = a.Eval
	}
	return result(args[0].Type, func(r Row) Value {
		best := Null
		for _, e := range evs {
			v := e(r)
			if v.IsNull() {
				continue
			}
			if best.IsNull() {
				best = v
				continue
			}
			var better bool
			if v.IsFloat() {
				better = (sign > 0 && v.F > best.F) || (sign < 0 && v.F < best.F) || math.IsNaN(v.F)
			} else {
				better = (sign > 0 && v.I > best.I) || (sign < 0 && v.I < best.I)
			}
			if better {
				best = v
			}
		}
		return best
	})
}
