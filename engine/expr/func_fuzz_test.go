package expr

import (
	"math"
	"testing"

	"github.com/tally-db/tally/siddhiql"
)

// FuzzFunctions evaluates every function shape over arbitrary strings and numbers: no input
// an event can carry may panic.
func FuzzFunctions(f *testing.F) {
	f.Add("Hello World", "o", int32(3), int64(1415712224000), 2.5)
	f.Add("", "(", int32(-1), int64(-1), math.Copysign(0, -1))
	f.Add("héllo😀", "$1\\", int32(99), int64(1<<62), 1e308)
	f.Add("Mozilla/5.0 (Linux; Android 10; SM-G973F)", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX", int32(2147483647), int64(-9223372036854775808), -1e-310)
	srcs := []string{
		"str:concat(s, p, i, l, d)", "str:length(s)", "str:substr(s, i)", "str:substr(s, i, i)",
		"str:substr(s, p)", "str:substr(s, p, i)", "str:contains(s, p)", "str:upper(s)", "str:reverse(s)",
		"str:trim(s)", "str:equalsIgnoreCase(s, p)", "str:replaceAll(s, p, s)", "str:replaceFirst(s, p, p)",
		"str:split(s, p, i)", "str:regexp(s, p)", "regex:matches(p, s)",
		"time:timestampInMilliseconds(s, p)", "time:timestampInMilliseconds(s)", "time:dateFormat(l, p)",
		"time:dateFormat(s, p, p)", "time:extract('WEEK', s, p)", "time:extract(l, 'QUARTER')",
		"time:dateAdd(s, i, 'MONTH', p)", "time:dateAdd(l, i, 'YEAR')",
		"convert(s, 'int')", "convert(s, 'double')", "convert(d, 'long')", "convert(d, 'string')", "cast(o, 'int')",
		"math:round(d)", "math:log(d, l)", "math:power(d, i)", "maximum(d, d, d)",
		"env:getUserAgentProperty(s, 'os')", "env:getUserAgentProperty(s, 'browser')", "env:getUserAgentProperty(s, 'device')",
		"geo:findCountryFromIP(s)", "UUID()", "instanceOfLong(o)",
	}
	env := &Env{App: "F", GeoIP: fakeGeo{}}
	var evals []Eval
	for _, src := range srcs {
		e, err := siddhiql.ParseExpr(src)
		if err != nil {
			f.Fatalf("parse %s: %v", src, err)
		}
		c, err := Compile(e, &Fields{Stream: "S", Attrs: fuzzAttrs, Env: env})
		if err != nil {
			f.Fatalf("compile %s: %v", src, err)
		}
		evals = append(evals, c.Eval)
	}
	f.Fuzz(func(t *testing.T, s, p string, i int32, l int64, d float64) {
		env.Enter(uint64(l), l)
		row := Row{String(s), String(p), Int(i), Long(l), Double(d), {T: siddhiql.TypeObject, S: s}}
		for _, ev := range evals {
			_ = ev(row)
		}
	})
}

var fuzzAttrs = []siddhiql.Attribute{
	{Name: "s", Type: siddhiql.TypeString}, {Name: "p", Type: siddhiql.TypeString}, {Name: "i", Type: siddhiql.TypeInt},
	{Name: "l", Type: siddhiql.TypeLong}, {Name: "d", Type: siddhiql.TypeDouble}, {Name: "o", Type: siddhiql.TypeObject},
}
