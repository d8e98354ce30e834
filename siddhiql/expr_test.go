package siddhiql

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParseExpr(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"a or b and c", "(a or (b and c))"},
		{"not a and b", "(not a and b)"},
		{"not a == 1", "not (a == 1)"},
		{"a == b < c", "(a == (b < c))"},
		{"a < b == c < d", "((a < b) == (c < d))"},
		{"1 + 2 * 3 - 4 / 5 % 6", "((1 + (2 * 3)) - ((4 / 5) % 6))"},
		{"-x * 2", "(-x * 2)"},
		{"- -5", "-(-5)"},
		{"-2147483648", "-2147483648"},
		{"+7", "7"},
		{"10L", "10L"},
		{"10l", "10L"},
		{"1.5", "1.5"},
		{"1.5d", "1.5"},
		{"2d", "2.0"},
		{"1e3", "1000.0"},
		{"1.5f", "1.5f"},
		{"TRUE or False", "(true or false)"},
		{"'it''s'", ""}, // two adjacent strings: an error, checked below
		{`"a\"b\\c\n"`, `"a\"b\\c\n"`},
		{`'\d+'`, `"\\d+"`},
		{`"""multi
line "quoted" """`, `"multi\nline \"quoted\" "`},
		{"S.price", "S.price"},
		{"count()", "count()"},
		{"str:concat(a, 'x', 1)", `str:concat(a, "x", 1)`},
		{"a is null", `(a is null)`},
		{"S.a is null and not (f(x) is null)", `((S.a is null) and not ((f(x) is null)))`},
		{"not S.x is null", `not ((S.x is null))`},
		{"`select` + 1", "(`select` + 1)"},
		{"1 min", "1 min"},
		{"500 millisec", "500 millisec"},
		{"1 min 30 sec", "1 min 30 sec"},
		{"2 hours", "2 hours"},
		{"1 week", "7 days"},
		{"1 year", "365 days"},
		{"1 MONTH", "30 days"},
		{"-1 min", "-(1 min)"},
		{"10L sec", "10 sec"},
		{"1 min + 1 sec", "(1 min + 1 sec)"},
		{"f(1 min, 2)", "f(1 min, 2)"},
		{"a /* c */ + -- line\n b // x", "(a + b)"},
		{"min(price) + max(price)", "(min(price) + max(price))"},
		{"sec + 1", "(sec + 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := ParseExpr(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ParseExpr(%q) = %s, want an error", tt.in, FormatExpr(e))
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseExpr(%q): %v", tt.in, err)
			}
			if got := FormatExpr(e); got != tt.want {
				t.Errorf("ParseExpr(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseExpr_Literals(t *testing.T) {
	tests := []struct {
		in   string
		want Literal
	}{
		{"10", Literal{Type: TypeInt, Int: 10}},
		{"2147483647", Literal{Type: TypeInt, Int: math.MaxInt32}},
		{"-2147483648", Literal{Type: TypeInt, Int: math.MinInt32}},
		{"9223372036854775807L", Literal{Type: TypeLong, Int: math.MaxInt64}},
		{"-9223372036854775808L", Literal{Type: TypeLong, Int: math.MinInt64}},
		{"1.25", Literal{Type: TypeDouble, Float: 1.25}},
		{"-1.25D", Literal{Type: TypeDouble, Float: -1.25}},
		{"1.25F", Literal{Type: TypeFloat, Float: 1.25}},
		{"'x'", Literal{Type: TypeString, Str: "x"}},
		{"true", Literal{Type: TypeBool, Bool: true}},
		{"1 min 30 sec", Literal{Type: TypeLong, Int: 90000, Time: true}},
		{"1 day 2 hours 3 minutes 4 seconds 5 milliseconds", Literal{Type: TypeLong, Int: 86400000 + 7200000 + 180000 + 4000 + 5, Time: true}},
		{"2 weeks", Literal{Type: TypeLong, Int: 14 * 86400000, Time: true}},
		{"1 year 1 month", Literal{Type: TypeLong, Int: 395 * 86400000, Time: true}},
	}
	for _, tt := range tests {
		e, err := ParseExpr(tt.in)
		if err != nil {
			t.Errorf("ParseExpr(%q): %v", tt.in, err)
			continue
		}
		l, ok := e.(*Literal)
		if !ok {
			t.Errorf("ParseExpr(%q) = %T, want *Literal", tt.in, e)
			continue
		}
		tt.want.Pos = Pos{1, 1}
		if *l != tt.want {
			t.Errorf("ParseExpr(%q) = %+v, want %+v", tt.in, *l, tt.want)
		}
	}
}

func TestParseExpr_Positions(t *testing.T) {
	e, err := ParseExpr("a +\n  S.b * f(1 min)")
	if err != nil {
		t.Fatal(err)
	}
	add := e.(*Binary)
	mul := add.R.(*Binary)
	call := mul.R.(*Call)
	got := []Pos{add.Pos, add.L.Position(), mul.Pos, mul.L.Position(), call.Pos, call.Args[0].Position()}
	want := []Pos{{1, 3}, {1, 1}, {2, 7}, {2, 3}, {2, 9}, {2, 11}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("position %d = %s, want %s", i, got[i], want[i])
		}
	}
}

func TestParseExpr_Errors(t *testing.T) {
	tests := []struct {
		in, pos, msg string
	}{
		{"2147483648", "1:1", "int literal 2147483648 is out of range: add 'L' for a long"},
		{"-2147483649", "1:1", "int literal -2147483649 is out of range"},
		{"9223372036854775808L", "1:1", "long literal 9223372036854775808L is out of range"},
		{"1e999", "1:1", "double literal 1e999 is out of range"},
		{"1e39f", "1:1", "float literal 1e39f is out of range"},
		{"(a + 1) is null", "1:9", "'is null' applies to an attribute, a stream or a function call"},
		{"a is 1", "1:6", "expected 'null' after 'is'"},
		{"a in", "1:5", "expected a table name after 'in', found end of input"},
		{"null", "1:1", "null is not supported"},
		{"a = 1", "1:3", "use '==' to compare, not '='"},
		{"a +", "1:4", "expected an expression, found end of input"},
		{"(a", "1:3", "expected ')' to close '(' at 1:1, found end of input"},
		{"f(a b)", "1:5", "expected ',' or ')' in the call opened at 1:2, found 'b'"},
		{"count(*)", "1:7", "'*' is not a function argument; write count()"},
		{"select", "1:1", "expected an expression, found 'select'"},
		{"a b", "1:3", "unexpected 'b' after expression"},
		{"1.5 sec", "1:1", "a time value must be a whole number, found 1.5"},
		{"30 sec 1 min", "1:10", "time units must go from largest to smallest, each at most once: found 'min' after 'sec'"},
		{"1 sec 2 sec", "1:9", "found 'sec' after 'sec'"},
		{"9223372036854775807 year", "1:1", "overflows a long"},
		{"'abc", "1:1", "unterminated string"},
		{"'a\nb'", "1:1", "unterminated string"},
		{`"""abc`, "1:1", `unterminated """ string`},
		{"/* x", "1:1", "unterminated /* comment"},
		{"a ! b", "1:3", "unexpected character '!'"},
		{"a $", "1:3", "unexpected character '$'"},
		{"`1x`", "1:1", "malformed quoted identifier"},
		{"+a", "1:1", "unary '+' is only allowed before a number"},
		{"S[0].a", "1:2", "indexed event references (S[...]) are only used in patterns"},
		{"é", "1:1", "unexpected character 'é'"},
		{"x\n  é", "2:3", "unexpected character 'é'"},
	}
	for _, tt := range tests {
		_, err := ParseExpr(tt.in)
		checkErr(t, tt.in, err, tt.pos, tt.msg)
	}
}

// checkErr asserts err is an *Error at pos whose message contains msg.
func checkErr(t *testing.T, in string, err error, pos, msg string) {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) {
		t.Errorf("%q: error = %v, want *Error %q", in, err, msg)
		return
	}
	if pe.Pos.String() != pos || !strings.Contains(pe.Msg, msg) {
		t.Errorf("%q: error = %v\n want %s: ...%s...", in, err, pos, msg)
	}
}

func TestTimeUnitMillis(t *testing.T) {
	tests := map[string]int64{
		"millisec": 1, "MilliSecond": 1, "milliseconds": 1, "sec": 1000, "second": 1000, "SECONDS": 1000,
		"min": 60000, "minute": 60000, "minutes": 60000, "hour": 3600000, "Hours": 3600000,
		"day": 86400000, "days": 86400000, "week": 7 * 86400000, "weeks": 7 * 86400000,
		"month": 30 * 86400000, "months": 30 * 86400000, "year": 365 * 86400000, "YEARS": 365 * 86400000,
	}
	for unit, want := range tests {
		if got, ok := TimeUnitMillis(unit); !ok || got != want {
			t.Errorf("TimeUnitMillis(%q) = %d, %t; want %d, true", unit, got, ok, want)
		}
	}
	for _, bad := range []string{"", "h", "ms", "secs", "mins", "hr", "s"} {
		if _, ok := TimeUnitMillis(bad); ok {
			t.Errorf("TimeUnitMillis(%q) ok, want false", bad)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := map[string]Duration{
		"sec": Seconds, "second": Seconds, "SECONDS": Seconds, "min": Minutes, "minute": Minutes,
		"Minutes": Minutes, "h": Hours, "hour": Hours, "hours": Hours, "day": Days, "DAYS": Days,
		"month": Months, "months": Months, "year": Years, "years": Years, " days ": Days,
	}
	for s, want := range tests {
		if got, ok := ParseDuration(s); !ok || got != want {
			t.Errorf("ParseDuration(%q) = %v, %t; want %v, true", s, got, ok, want)
		}
	}
	for _, bad := range []string{"", "week", "weeks", "millisec", "d", "hr", "secs"} {
		if _, ok := ParseDuration(bad); ok {
			t.Errorf("ParseDuration(%q) ok, want false", bad)
		}
	}
}

func TestParse_DeepNesting(t *testing.T) {
	deep := func(open, close string, n int) string {
		return strings.Repeat(open, n) + "x" + strings.Repeat(close, n)
	}
	for _, tt := range []struct{ src, pos string }{
		{deep("(", ")", 100000), "1:201"},
		{deep("not ", "", 100000), "1:797"},
		{deep("- ", "", 100000), "1:399"},
		{deep("f(", ")", 100000), "1:401"},
	} {
		_, err := ParseExpr(tt.src)
		checkErr(t, tt.src[:10], err, tt.pos, "nested too deeply (more than 200 levels)")
	}
	if _, err := ParseExpr(deep("(", ")", 150)); err != nil {
		t.Errorf("150 parentheses: %v", err)
	}
	_, err := Parse(strings.Repeat("@a(", 100000) + "define stream S (a int);")
	checkErr(t, "@a(@a(...", err, "1:601", "nested too deeply")
}
