package expr

import (
	"testing"

	"github.com/tally-db/tally/siddhiql"
)

// benchEval measures one compiled expression per op over a fixed row.
func benchEval(b *testing.B, src string, row Row) {
	e, err := siddhiql.ParseExpr(src)
	if err != nil {
		b.Fatal(err)
	}
	env := &Env{App: "B"}
	env.Enter(1, 1000)
	c, err := Compile(e, &Fields{Stream: "S", Attrs: fuzzAttrs, Env: env})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Eval(row)
	}
}

var benchRow = Row{String("api.example.com"), String("GET"), Int(200), Long(1415712224000), Double(2.5), {T: siddhiql.TypeObject, S: `"x"`}}

// The truncation the API-M receiver applies to every attribute.
func BenchmarkTruncate(b *testing.B) {
	benchEval(b, "ifThenElse(str:length(s) > 200, str:substr(s, 0, 200), s)", benchRow)
}

func BenchmarkConcat(b *testing.B) { benchEval(b, "str:concat(p, ' ', s, ' ', i)", benchRow) }

func BenchmarkDateFormat(b *testing.B) {
	benchEval(b, "time:dateFormat(l, 'yyyy-MM-dd HH:mm:ss')", benchRow)
}

func BenchmarkRegexMatches(b *testing.B) {
	benchEval(b, "regex:matches('2[0-9][0-9]', convert(i, 'string'))", benchRow)
}

func BenchmarkUUID(b *testing.B) { benchEval(b, "UUID()", benchRow) }

func BenchmarkUserAgent(b *testing.B) {
	row := Row{String("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"), Null, Null, Null, Null, Null}
	benchEval(b, "env:getUserAgentProperty(s, 'browser')", row)
}
