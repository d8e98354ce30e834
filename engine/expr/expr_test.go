package expr

import (
	"strings"
	"testing"

	"github.com/tally-db/tally/siddhiql"
)

var testAttrs = []siddhiql.Attribute{
	{Name: "s", Type: siddhiql.TypeString}, {Name: "i", Type: siddhiql.TypeInt}, {Name: "l", Type: siddhiql.TypeLong},
	{Name: "f", Type: siddhiql.TypeFloat}, {Name: "d", Type: siddhiql.TypeDouble}, {Name: "b", Type: siddhiql.TypeBool},
	{Name: "o", Type: siddhiql.TypeObject},
}

func TestCompileAndEval(t *testing.T) {
	row := Row{String("x"), Int(7), Long(10), Float(1.5), Double(2.5), Bool(true), {T: siddhiql.TypeObject, S: `{"a":1}`}}
	cases := []struct{ src, want string }{
		{"i + l", "17"},
		{"i / 2", "3"},
		{"l % 3", "1"},
		{"i / 0", "null"},
		{"d * 2", "5.0"},
		{"i + d", "9.5"},
		{"f + f", "3.0"},
		{"-i", "-7"},
		{"2147483647 + 1", "-2147483648"}, // int arithmetic wraps as Java's does
		{"i > 5 and d < 3.0", "true"},
		{"not b or s == 'y'", "false"},
		{"s != 'y'", "true"},
		{"1 min", "60000"},
		{"l >= 10 and l <= 10", "true"},
	}
	for _, c := range cases {
		e, err := siddhiql.ParseExpr(c.src)
		if err != nil {
			t.Fatalf("parse %q: %v", c.src, err)
		}
		comp, err := Compile(e, &Fields{Stream: "S", Attrs: testAttrs})
		if err != nil {
			t.Fatalf("compile %q: %v", c.src, err)
		}
		if got := comp.Eval(row).String(); got != c.want {
			t.Errorf("%s = %s, want %s", c.src, got, c.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct{ src, msg string }{
		{"s + 1", "needs numbers"},
		{"s > 'a'", "needs numbers"},
		{"b == 1", "cannot compare bool with int"},
		{"not i", "needs a bool"},
		{"i and b", "needs bool operands"},
		{"nope", `has no attribute "nope"`},
		{"T.s", `unknown stream "T"`},
		{"sum(i)", "not allowed here"},
		{"str:nope(s, s)", "unknown function str:nope()"},
		{"ifThenElse(i, 1, 2)", "argument 1 of ifThenElse() must be bool, got int"},
		{"ifThenElse(b, 1, 'x')", "same type"},
		{"str:concat(s)", "str:concat() takes at least 2 argument(s), got 1"},
		{"currentTimeMillis()", "not available here"},
		{"UUID()", "not available here"},
		{"cast(s, 'decimal')", "type must be one of"},
		{"cast(s, s)", "must be a string constant"},
		{"default(s, s)", "must be a constant"},
		{"default(i, 1/2)", "must be a constant, found (1 / 2)"},
		{"time:dateFormat(l, 'yyyy-MM-dd H')", `"H" is not supported`},
		{"str:regexp(s, '(')", "bad regular expression"},
		{"time:extract('EPOCH', s)", "unknown unit"},
		{"maximum(i, l)", "all arguments of one type"},
		{"math:round(i)", "must be float or double"},
	}
	for _, c := range cases {
		e, err := siddhiql.ParseExpr(c.src)
		if err != nil {
			t.Fatalf("parse %q: %v", c.src, err)
		}
		if _, err := Compile(e, &Fields{Stream: "S", Attrs: testAttrs}); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want %q", c.src, err, c.msg)
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	good := `{"s":"x","i":7,"l":10,"f":1.5,"d":2,"b":true,"o":{"a": [1, 2]}}`
	row, err := DecodeJSON(testAttrs, []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(AppendJSONObject(nil, testAttrs, row)), `{"s":"x","i":7,"l":10,"f":1.5,"d":2.0,"b":true,"o":{"a":[1,2]}}`; got != want {
		t.Errorf("round trip = %s, want %s", got, want)
	}
	nulls, err := DecodeJSON(testAttrs, []byte(`{"s":null,"i":null,"l":null,"f":null,"d":null,"b":null,"o":null}`))
	if err != nil || !nulls[0].IsNull() || !nulls[6].IsNull() {
		t.Errorf("explicit nulls: %v, %v", nulls, err)
	}
	bad := []struct{ doc, msg string }{
		{`[1]`, "not a JSON object"},
		{`null`, "event is null"},
		{`{"s":"x"}`, `attribute "i": missing (want int)`},
		{strings.Replace(good, `"i":7`, `"i":7.5`, 1), `attribute "i": 7.5 is not a int`},
		{strings.Replace(good, `"i":7`, `"i":3000000000`, 1), `attribute "i": 3000000000 is out of range for int`},
		{strings.Replace(good, `"l":10`, `"l":"10"`, 1), `attribute "l": want an integer (long), got a string`},
		{strings.Replace(good, `"d":2`, `"d":true`, 1), `attribute "d": want a number (double), got a bool`},
		{strings.Replace(good, `"s":"x"`, `"s":1`, 1), `attribute "s": want a string, got a number`},
		{strings.Replace(good, `"b":true`, `"b":"yes"`, 1), `attribute "b": want a bool, got a string`},
		{strings.Replace(good, `}}`, `},"extra":1}`, 1), `attribute "extra": not an attribute of the stream`},
	}
	for _, c := range bad {
		if _, err := DecodeJSON(testAttrs, []byte(c.doc)); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want %q", c.doc, err, c.msg)
		}
	}
}

func TestValueJSONAndKeys(t *testing.T) {
	cases := []struct {
		v    Value
		want string
	}{
		{Double(100), "100.0"}, {Double(1e21), "1e+21"}, {Double(0.1), "0.1"}, {Float(1.5), "1.5"},
		{Long(-3), "-3"}, {String(`a"b`), `"a\"b"`}, {Null, "null"}, {Bool(false), "false"},
	}
	for _, c := range cases {
		if got := c.v.String(); got != c.want {
			t.Errorf("%#v = %s, want %s", c.v, got, c.want)
		}
	}
	// Keys are unambiguous across types and string boundaries.
	k1 := String("ab").Key(String("c").Key(nil))
	k2 := String("a").Key(String("bc").Key(nil))
	if string(k1) == string(k2) || string(Long(1).Key(nil)) == string(Int(1).Key(nil)) {
		t.Error("distinct values share a key")
	}
}
