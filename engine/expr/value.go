// Package expr holds the engine's runtime values and compiles SiddhiQL expressions into
// evaluators over rows of values. It is pure: no clock, no randomness, no I/O.
package expr

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// Value is one attribute value. The zero Value is null. Ints, longs and bools live in I
// (bool as 0/1), floats and doubles in F, strings and objects (as JSON text) in S. A Value is
// a plain struct so rows of values cost no allocation per attribute.
type Value struct {
	T siddhiql.Type
	I int64
	F float64
	S string
}

// Row is one event or intermediate row: values in attribute order.
type Row = []Value

// Null is the null value.
var Null = Value{}

// Constructors for each type.
func Int(i int32) Value     { return Value{T: siddhiql.TypeInt, I: int64(i)} }
func Long(i int64) Value    { return Value{T: siddhiql.TypeLong, I: i} }
func Float(f float32) Value { return Value{T: siddhiql.TypeFloat, F: float64(f)} }
func Double(f float64) Value {
	return Value{T: siddhiql.TypeDouble, F: f}
}
func String(s string) Value { return Value{T: siddhiql.TypeString, S: s} }
func Bool(b bool) Value {
	v := Value{T: siddhiql.TypeBool}
	if b {
		v.I = 1
	}
	return v
}

// IsNull reports whether v is null.
func (v Value) IsNull() bool { return v.T == siddhiql.TypeInvalid }

// Truth is v as a condition: only a true bool is true.
func (v Value) Truth() bool { return v.T == siddhiql.TypeBool && v.I != 0 }

// IsFloat reports whether v holds a float or double.
func (v Value) IsFloat() bool { return v.T == siddhiql.TypeFloat || v.T == siddhiql.TypeDouble }

// AsFloat is a numeric v as float64 (0 for non-numeric).
func (v Value) AsFloat() float64 {
	switch v.T {
	case siddhiql.TypeInt, siddhiql.TypeLong:
		return float64(v.I)
	case siddhiql.TypeFloat, siddhiql.TypeDouble:
		return v.F
	}
	return 0
}

// Equal reports whether a and b hold the same type and value (NaN equals NaN, so state
// comparisons are reflexive).
func Equal(a, b Value) bool {
	if a.T != b.T {
		return false
	}
	switch a.T {
	case siddhiql.TypeFloat, siddhiql.TypeDouble:
		return a.F == b.F || (math.IsNaN(a.F) && math.IsNaN(b.F))
	case siddhiql.TypeString, siddhiql.TypeObject:
		return a.S == b.S
	}
	return a.I == b.I
}

// Key appends a type-tagged, unambiguous encoding of v to dst, for use in map keys (group
// keys, distinct sets). Equal values give equal keys.
func (v Value) Key(dst []byte) []byte {
	dst = append(dst, byte(v.T))
	switch v.T {
	case siddhiql.TypeFloat, siddhiql.TypeDouble:
		dst = strconv.AppendUint(dst, math.Float64bits(v.F), 36)
		dst = append(dst, 0)
	case siddhiql.TypeString, siddhiql.TypeObject:
		dst = strconv.AppendInt(dst, int64(len(v.S)), 36)
		dst = append(dst, ':')
		dst = append(dst, v.S...)
	case siddhiql.TypeInvalid:
	default:
		dst = strconv.AppendInt(dst, v.I, 36)
		dst = append(dst, 0)
	}
	return dst
}

// String formats v for messages.
func (v Value) String() string { return string(v.AppendJSON(nil)) }

// AppendJSON appends v as JSON the way Siddhi's store API prints it: longs and ints as
// integers, doubles and floats always with a fraction or exponent (100.0), strings quoted,
// objects as their JSON text, null for null and for non-finite numbers.
func (v Value) AppendJSON(dst []byte) []byte {
	switch v.T {
	case siddhiql.TypeInt, siddhiql.TypeLong:
		return strconv.AppendInt(dst, v.I, 10)
	case siddhiql.TypeFloat, siddhiql.TypeDouble:
		if math.IsNaN(v.F) || math.IsInf(v.F, 0) {
			return append(dst, "null"...)
		}
		bits := 64
		if v.T == siddhiql.TypeFloat {
			bits = 32
		}
		start := len(dst)
		dst = strconv.AppendFloat(dst, v.F, 'g', -1, bits)
		for _, c := range dst[start:] {
			if c == '.' || c == 'e' || c == 'E' {
				return dst
			}
		}
		return append(dst, ".0"...)
	case siddhiql.TypeString:
		return appendJSONString(dst, v.S)
	case siddhiql.TypeObject:
		if v.S == "" {
			return append(dst, "null"...)
		}
		return append(dst, v.S...)
	case siddhiql.TypeBool:
		return strconv.AppendBool(dst, v.I != 0)
	}
	return append(dst, "null"...)
}

// Encode appends v's binary encoding to w.
func (v Value) Encode(w *wire.Writer) {
	w.Byte(byte(v.T))
	switch v.T {
	case siddhiql.TypeFloat, siddhiql.TypeDouble:
		w.Float(v.F)
	case siddhiql.TypeString, siddhiql.TypeObject:
		w.String(v.S)
	case siddhiql.TypeInvalid:
	default:
		w.Varint(v.I)
	}
}

// DecodeValue reads a value written by Encode.
func DecodeValue(r *wire.Reader) Value {
	v := Value{T: siddhiql.Type(r.Byte())}
	switch v.T {
	case siddhiql.TypeFloat, siddhiql.TypeDouble:
		v.F = r.Float()
	case siddhiql.TypeString, siddhiql.TypeObject:
		v.S = r.String()
	case siddhiql.TypeInvalid:
	case siddhiql.TypeInt, siddhiql.TypeLong, siddhiql.TypeBool:
		v.I = r.Varint()
	default:
		r.Fail(fmt.Errorf("expr: bad value type %d", v.T))
	}
	return v
}

// Convert converts v to type t the way a typed column stores it: numbers widen or narrow
// between int, long, float and double; null stays null. ok is false when v cannot be
// represented (a string for a number, say).
func Convert(v Value, t siddhiql.Type) (Value, bool) {
	if v.IsNull() || v.T == t {
		return v, true
	}
	switch t {
	case siddhiql.TypeInt:
		if v.T == siddhiql.TypeLong && v.I == int64(int32(v.I)) {
			return Int(int32(v.I)), true
		}
	case siddhiql.TypeLong:
		if v.T == siddhiql.TypeInt {
			return Long(v.I), true
		}
	case siddhiql.TypeFloat:
		if v.T.Numeric() {
			return Float(float32(v.AsFloat())), true
		}
	case siddhiql.TypeDouble:
		if v.T.Numeric() {
			return Double(v.AsFloat()), true
		}
	}
	return Null, false
}

// appendJSONString appends s as encoding/json writes it (json.Marshal: HTML-safe). A string
// of printable ASCII with nothing to escape, the usual case, is copied between quotes here;
// any other goes through json.Marshal, so the bytes are always the same as its.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
