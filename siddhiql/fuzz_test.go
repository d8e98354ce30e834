package siddhiql

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// addSeeds adds the testdata apps and a few fragments to the fuzz corpus.
func addSeeds(f *testing.F, fragments ...string) {
	for _, pattern := range []string{"*.siddhi", "invalid/*.siddhi"} {
		files, _ := filepath.Glob(filepath.Join(testdataDir, pattern))
		for _, file := range files {
			src, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(string(src))
		}
	}
	for _, s := range fragments {
		f.Add(s)
	}
}

// checkErrType asserts that a failure is an *Error with a real position.
func checkErrType(t *testing.T, err error) {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if pe.Pos.Line < 1 || pe.Pos.Col < 1 || pe.Msg == "" {
		t.Fatalf("error %q has no position or message", err)
	}
}

func FuzzParse(f *testing.F) {
	addSeeds(f,
		"define stream S (a int);\nfrom S[a > 1]#window.time(1 min) select a, count() as c group by a having c > 2 insert all events into O;",
		"@app:name('x') define stream S (a long); @purge(enable='false', @retentionPeriod(sec='all')) define aggregation A from S select sum(a) as t aggregate by a every sec, min;",
		"@distribution(strategy='partitioned', partitionKey='a') define stream S (a string, b \"\"\"x\"\"\");",
		"from S#window.externalTimeBatch(ts, 1 min 30 sec, 0L, 5 sec, true)[x != 'y'] select * insert into O",
		"define aggregation A from S select f(-2147483648, 1.5e3f, 10L) as x aggregate every hour ... day",
		"/* c */ -- d\n// e\n`from`",
		"define trigger T at every 5 sec; define trigger U at '*/5 * * * * ?'; from S select a group by a output last every 2 events insert into O;",
		"@purge(enable='true', idle.period='1 sec') partition with (a of S, b < 1 as 'x' or b >= 1 as 'y' of R) begin from S select a output snapshot every 1 min insert into #I; from #I select * insert into O; end;",
		"@primaryKey('a') @index('b') define table T (a string, b long); from S select a, b update or insert into T for all events set T.b = T.b + b on T.a == a;",
		"from S#window.length(1) as s unidirectional left outer join T as t on s.a == t.a select s.a, t.b having t.b > 1 insert into O; from S[(T.a == a) in T] delete T on T.a == a;",
	)
	f.Fuzz(func(t *testing.T, src string) {
		app, err := Parse(src)
		if err != nil {
			checkErrType(t, err)
			return
		}
		for _, a := range app.Aggregations {
			if a.Purge == nil {
				t.Fatalf("aggregation %s has nil Purge", a.Name)
			}
			if len(a.Durations) == 0 {
				t.Fatalf("aggregation %s has no durations", a.Name)
			}
			for i, d := range a.Durations {
				if i > 0 && d <= a.Durations[i-1] {
					t.Fatalf("aggregation %s durations %v are not sorted and unique", a.Name, a.Durations)
				}
				if _, ok := a.Purge.Retention[d]; !ok {
					t.Fatalf("aggregation %s has no retention for %s", a.Name, d)
				}
			}
			if len(a.Purge.Retention) != len(a.Durations) {
				t.Fatalf("aggregation %s retention %v has durations it does not compute", a.Name, a.Purge.Retention)
			}
			if len(a.Select) == 0 {
				t.Fatalf("aggregation %s has an empty select", a.Name)
			}
		}
		for _, s := range app.Streams {
			if len(s.Attributes) == 0 {
				t.Fatalf("stream %s has no attributes", s.Name)
			}
			if (s.Routing.Strategy == Partitioned) != (s.Routing.PartitionKey != "") {
				t.Fatalf("stream %s routing %+v", s.Name, s.Routing)
			}
		}
		for _, q := range app.Queries {
			if q.From == "" || q.Into == "" || q.SelectAll == (len(q.Select) > 0) {
				t.Fatalf("query %+v", q)
			}
			if r := q.Rate; r != nil && (r.Events > 0) == (r.Millis > 0) {
				t.Fatalf("output rate %+v needs exactly one of events and millis", r)
			}
		}
		for _, p := range app.Partitions {
			if len(p.With) == 0 || len(p.Queries) == 0 {
				t.Fatalf("partition %+v", p)
			}
			for _, w := range p.With {
				if (w.Value == nil) == (len(w.Ranges) == 0) {
					t.Fatalf("partition with %+v needs a value or ranges", w)
				}
			}
		}
		// Parsing is deterministic: the same text gives the same tree.
		again, err := Parse(src)
		if err != nil {
			t.Fatalf("second parse failed: %v", err)
		}
		if Dump(app) != Dump(again) {
			t.Fatal("two parses of the same text dump differently")
		}
	})
}

func FuzzParseStoreQuery(f *testing.F) {
	addSeeds(f,
		`from TradeAggregation within "2014-02-15 00:00:00 +05:30", "2014-03-16 00:00:00 +05:30" per "days" select symbol, total, avgPrice;`,
		`from TradeAggregation on symbol == "FB" within "2014-02-15 **:**:** +05:30" per "hours" select symbol, total, avgPrice`,
		`from TradeAggregation within 1496200000000L, 1596434876000L per 'seconds' select AGG_TIMESTAMP, symbol, total order by AGG_TIMESTAMP;`,
		`from A as T within 0L, 10L per 'h' select * group by sym having total > 5 order by sym desc limit 10 offset 2`,
	)
	f.Fuzz(func(t *testing.T, src string) {
		q, err := ParseStoreQuery(src)
		if err != nil {
			checkErrType(t, err)
			return
		}
		if q.From == "" || q.WithinStart == nil || q.Per == nil || q.SelectAll == (len(q.Select) > 0) {
			t.Fatalf("store query %+v", q)
		}
		_ = DumpStoreQuery(q)
	})
}

// FuzzParseExpr checks that FormatExpr writes text that parses back to the same tree.
func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{"a or b and not c == 1", "-x * -2147483648 + 1.5f - 1e300 % 3L", "f(1 min 30 sec, 'a\"b', `select`)",
		"- -5", "-(1 min)", "ns:g(S.a) >= -0.0", "\"\"\"x\ny\"\"\"", "'\\d'", "a == T.a in T and (b in `U`) in V"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := ParseExpr(src)
		if err != nil {
			checkErrType(t, err)
			return
		}
		text := FormatExpr(e)
		e2, err := ParseExpr(text)
		if err != nil {
			t.Fatalf("FormatExpr(%q) = %q does not parse: %v", src, text, err)
		}
		if text2 := FormatExpr(e2); text2 != text {
			t.Fatalf("round trip of %q: %q then %q", src, text, text2)
		}
	})
}
