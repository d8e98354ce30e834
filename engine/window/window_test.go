package window

import (
	"slices"
	"strings"
	"testing"

	"github.com/tally-db/tally/siddhiql"
)

const (
	cur = siddhiql.CurrentEvents
	exp = siddhiql.ExpiredEvents
	all = siddhiql.AllEvents
)

type runCase struct {
	name  string
	q     func() *siddhiql.Query
	steps []step
	want  []string
}

func runCases(t *testing.T, cases []runCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := runAll(t, mustCompile(t, tc.q()), tc.steps)
			if !slices.Equal(got, tc.want) {
				t.Errorf("outputs:\n got  %q\n want %q", got, tc.want)
			}
		})
	}
}

func TestQuery_NoWindow(t *testing.T) {
	filtered := func(o siddhiql.OutputEvents) func() *siddhiql.Query {
		return func() *siddhiql.Query {
			q := query(nil, o, symQ(), nil, nil)
			q.Filter = bin(siddhiql.OpGt, vr("price"), dl(10))
			return q
		}
	}
	runCases(t, []runCase{
		{"filter only", filtered(cur), []step{at(1, ev("A", 5), ev("B", 20))}, []string{"C@1 B 20"}},
		{"filter only, expired events", filtered(exp), []step{at(1, ev("A", 5), ev("B", 20))}, nil},
		{"filter only, all events", filtered(all), []step{at(1, ev("A", 5), ev("B", 20)), at(2, ev("C", 30))},
			[]string{"C@1 B 20", "C@2 C 30"}},
		{"running sum per group", func() *siddhiql.Query { return query(nil, cur, symSum(), []string{"symbol"}, nil) },
			[]step{at(1, ev("A", 1), ev("B", 2)), at(2, ev("A", 3))},
			[]string{"C@1 A 1", "C@1 B 2", "C@2 A 4"}},
		{"running sum with having", func() *siddhiql.Query {
			return query(nil, cur, symSum(), []string{"symbol"}, bin(siddhiql.OpGe, vr("t"), il(3)))
		}, []step{at(1, ev("A", 1), ev("B", 2)), at(2, ev("A", 3)), at(3, ev("B", 1))},
			[]string{"C@2 A 4", "C@3 B 3"}},
		{"select star", func() *siddhiql.Query { return query(nil, cur, nil, nil, nil) },
			[]step{at(7, evt("A", 1, 99))}, []string{"C@7 A 1.0 1 99"}},
	})
}

func TestQuery_Length(t *testing.T) {
	plain := func(o siddhiql.OutputEvents) func() *siddhiql.Query {
		return func() *siddhiql.Query { return query(win("length", il(2)), o, symQ(), nil, nil) }
	}
	three := []step{at(1, ev("A", 1)), at(2, ev("B", 2)), at(3, ev("C", 3))}
	runCases(t, []runCase{
		{"all events", plain(all), three, []string{"C@1 A 1", "C@2 B 2", "E@3 A 1", "C@3 C 3"}},
		{"current events", plain(cur), three, []string{"C@1 A 1", "C@2 B 2", "C@3 C 3"}},
		{"expired events", plain(exp), three, []string{"E@3 A 1"}},
		{"one call with many events", plain(all), []step{at(1, ev("A", 1), ev("B", 2), ev("C", 3))},
			[]string{"C@1 A 1", "C@1 B 2", "E@1 A 1", "C@1 C 3"}},
		{"sum without group by", func() *siddhiql.Query {
			return query(win("length", il(2)), all, []siddhiql.OutputAttr{out(call("sum", vr("q")), "t")}, nil, nil)
		}, three, []string{"C@1 1", "C@2 3", "E@3 2", "C@3 5"}},
		{"group by with having", func() *siddhiql.Query {
			return query(win("length", il(3)), all, symSum(), []string{"symbol"}, bin(siddhiql.OpGt, vr("t"), il(2)))
		}, []step{at(1, ev("A", 1)), at(2, ev("A", 2)), at(3, ev("B", 5)), at(4, ev("A", 1))},
			[]string{"C@2 A 3", "C@3 B 5", "C@4 A 3"}},
		{"post-window filter sees expired events too", func() *siddhiql.Query {
			q := query(win("length", il(2)), all, nil, nil, nil)
			q.PostFilter = bin(siddhiql.OpGt, vr("q"), il(1))
			return q
		}, three, []string{"C@2 B 2.0 2 0", "C@3 C 3.0 3 0"}},
		{"min max distinctCount count avg with exact removal", func() *siddhiql.Query {
			return query(win("length", il(3)), cur, []siddhiql.OutputAttr{
				out(call("max", vr("price")), "mx"), out(call("min", vr("q")), "mn"),
				out(call("distinctCount", vr("symbol")), "d"), out(call("count"), "c"), out(call("avg", vr("q")), "a"),
			}, nil, nil)
		}, []step{at(1, ev("A", 5)), at(2, ev("B", 9)), at(3, ev("A", 1)), at(4, ev("A", 2)), at(5, ev("C", 3))},
			[]string{"C@1 5.0 5 1 1 5.0", "C@2 9.0 5 2 2 7.0", "C@3 9.0 1 2 3 5.0", "C@4 9.0 1 2 3 4.0", "C@5 3.0 1 2 3 2.0"}},
	})
}

func TestQuery_LengthBatch(t *testing.T) {
	plain := func(o siddhiql.OutputEvents, args ...siddhiql.Expr) func() *siddhiql.Query {
		return func() *siddhiql.Query { return query(win("lengthBatch", args...), o, symQ(), nil, nil) }
	}
	grouped := func(o siddhiql.OutputEvents) func() *siddhiql.Query {
		return func() *siddhiql.Query { return query(win("lengthBatch", il(2)), o, symSum(), []string{"symbol"}, nil) }
	}
	four := []step{at(1, ev("A", 1), ev("B", 2)), at(2, ev("C", 3)), at(3, ev("D", 4))}
	twoBatches := []step{at(1, ev("A", 1), ev("A", 2)), at(2, ev("A", 5), ev("B", 1))}
	runCases(t, []runCase{
		{"all events", plain(all, il(2)), four,
			[]string{"C@1 A 1", "C@1 B 2", "E@3 A 1", "E@3 B 2", "C@2 C 3", "C@3 D 4"}},
		{"current events", plain(cur, il(2)), four, []string{"C@1 A 1", "C@1 B 2", "C@2 C 3", "C@3 D 4"}},
		{"expired events", plain(exp, il(2)), four, []string{"E@3 A 1", "E@3 B 2"}},
		{"one row per group per batch", grouped(cur), twoBatches, []string{"C@1 A 3", "C@2 A 5", "C@2 B 1"}},
		// Siddhi keys expired and current events of one flush in one LinkedHashMap.
		{"grouped all events: current replaces expired of same key", grouped(all), twoBatches,
			[]string{"C@1 A 3", "C@2 A 5", "C@2 B 1"}},
		{"grouped expired events", grouped(exp), twoBatches, []string{"E@2 A null"}},
		{"one row per batch without group by", func() *siddhiql.Query {
			return query(win("lengthBatch", il(2)), cur, []siddhiql.OutputAttr{out(vr("symbol"), ""), out(call("sum", vr("q")), "t")}, nil, nil)
		}, four, []string{"C@1 B 3", "C@3 D 7"}},
		{"group by without aggregates", func() *siddhiql.Query {
			return query(win("lengthBatch", il(3)), cur, symQ(), []string{"symbol"}, nil)
		}, []step{at(1, ev("A", 1), ev("B", 2), ev("A", 3))}, []string{"C@1 A 3", "C@1 B 2"}},
		{"having per batch", func() *siddhiql.Query {
			return query(win("lengthBatch", il(3)), cur, symSum(), []string{"symbol"}, bin(siddhiql.OpGt, vr("t"), il(2)))
		}, []step{at(1, ev("A", 1), ev("B", 5), ev("A", 3))}, []string{"C@1 B 5", "C@1 A 4"}}, // A1 fails having: B is put first
		{"stream.current.event", plain(all, il(2), bl(true)), []step{at(1, ev("A", 1)), at(2, ev("B", 2)), at(3, ev("C", 3))},
			[]string{"C@1 A 1", "C@2 B 2", "E@3 A 1", "E@3 B 2", "C@3 C 3"}},
	})
}

func TestQuery_Time(t *testing.T) {
	example := func(o siddhiql.OutputEvents) func() *siddhiql.Query {
		// from S#window.time(1 min) select symbol, sum(q) as t group by symbol having t > 100 insert into Alerts;
		return func() *siddhiql.Query {
			return query(win("time", tl(60000)), o, symSum(), []string{"symbol"}, bin(siddhiql.OpGt, vr("t"), il(100)))
		}
	}
	exSteps := []step{at(0, ev("A", 60)), at(10000, ev("A", 50)), at(30000, ev("B", 200)), at(61000, ev("A", 10)),
		at(65000, ev("A", 45)), adv(200000)}
	plain := func(o siddhiql.OutputEvents) func() *siddhiql.Query {
		return func() *siddhiql.Query { return query(win("time", il(10)), o, symQ(), nil, nil) }
	}
	steps := []step{at(0, ev("A", 1)), at(5, ev("B", 2)), adv(12), at(20, ev("C", 3)), adv(40)}
	runCases(t, []runCase{
		{"SIDDHI.md alert example", example(cur), exSteps,
			[]string{"C@10000 A 110", "C@30000 B 200", "C@65000 A 105"}},
		{"alert example, expired events pass having too", example(all), exSteps,
			[]string{"C@10000 A 110", "C@30000 B 200", "C@65000 A 105"}},
		{"all events", plain(all), steps,
			[]string{"C@0 A 1", "C@5 B 2", "E@10 A 1", "E@15 B 2", "C@20 C 3", "E@30 C 3"}},
		{"expired events", plain(exp), steps, []string{"E@10 A 1", "E@15 B 2", "E@30 C 3"}},
		{"current events", plain(cur), steps, []string{"C@0 A 1", "C@5 B 2", "C@20 C 3"}},
		{"expiry due at now happens before the new event", func() *siddhiql.Query {
			return query(win("time", il(10)), all, []siddhiql.OutputAttr{out(call("sum", vr("q")), "t")}, nil, nil)
		}, []step{at(0, ev("A", 1)), at(5, ev("B", 2)), at(10, ev("C", 3))},
			[]string{"C@0 1", "C@5 3", "E@10 2", "C@10 5"}},
		{"clock never goes back", plain(all), []step{at(20, ev("A", 1)), at(5, ev("B", 2)), adv(7), adv(30)},
			[]string{"C@20 A 1", "C@20 B 2", "E@30 A 1", "E@30 B 2"}},
	})
}

func TestQuery_TimeBatch(t *testing.T) {
	plain := func(o siddhiql.OutputEvents, args ...siddhiql.Expr) func() *siddhiql.Query {
		return func() *siddhiql.Query { return query(win("timeBatch", args...), o, symQ(), nil, nil) }
	}
	steps := []step{at(1, ev("A", 1)), at(5, ev("B", 2)), adv(11), at(15, ev("C", 3)), at(25, ev("D", 4)), adv(31)}
	runCases(t, []runCase{
		{"all events", plain(all, il(10)), steps,
			[]string{"C@1 A 1", "C@5 B 2", "E@21 A 1", "E@21 B 2", "C@15 C 3", "E@31 C 3", "C@25 D 4"}},
		{"current events", plain(cur, il(10)), steps, []string{"C@1 A 1", "C@5 B 2", "C@15 C 3", "C@25 D 4"}},
		{"expired events", plain(exp, il(10)), steps, []string{"E@21 A 1", "E@21 B 2", "E@31 C 3"}},
		{"one row per group per flush", func() *siddhiql.Query {
			return query(win("timeBatch", tl(10)), cur, symSum(), []string{"symbol"}, nil)
		}, []step{at(1, ev("A", 1), ev("B", 2)), at(3, ev("A", 3)), adv(11), at(12, ev("B", 5)), adv(21)},
			[]string{"C@3 A 4", "C@1 B 2", "C@12 B 5"}},
		{"start.time aligns periods", plain(cur, il(10), il(0)),
			[]step{at(3, ev("A", 1)), adv(9), adv(10), at(12, ev("B", 2)), adv(19), adv(20)},
			[]string{"C@3 A 1", "C@12 B 2"}},
		{"stream.current.event", plain(all, il(10), bl(true)),
			[]step{at(1, ev("A", 1)), adv(11), at(12, ev("B", 2)), adv(30)},
			[]string{"C@1 A 1", "E@11 A 1", "C@12 B 2", "E@21 B 2"}},
		{"idle periods", plain(all, il(10)), []step{at(1, ev("A", 1)), adv(100), at(105, ev("B", 2)), adv(110), adv(111)},
			[]string{"C@1 A 1", "E@21 A 1", "C@105 B 2"}},
	})
}

func TestQuery_ExternalTime(t *testing.T) {
	steps := []step{at(100, evt("A", 1, 0)), at(101, evt("A", 2, 5)), at(102, evt("A", 3, 10)), at(103, evt("B", 4, 16))}
	runCases(t, []runCase{
		{"all events", func() *siddhiql.Query { return query(win("externalTime", vr("ts"), il(10)), all, symQ(), nil, nil) },
			steps, []string{"C@100 A 1", "C@101 A 2", "E@10 A 1", "C@102 A 3", "E@16 A 2", "C@103 B 4"}},
		{"group by sum", func() *siddhiql.Query {
			return query(win("externalTime", vr("ts"), tl(10)), all, symSum(), []string{"symbol"}, nil)
		}, steps, []string{"C@100 A 1", "C@101 A 3", "E@10 A 2", "C@102 A 5", "E@16 A 3", "C@103 B 4"}},
		{"no expiry without arrivals", func() *siddhiql.Query {
			return query(win("externalTime", vr("ts"), il(10)), exp, symQ(), nil, nil)
		}, []step{at(1, evt("A", 1, 0)), adv(1000000)}, nil},
	})
}

func TestQuery_ExternalTimeBatch(t *testing.T) {
	steps := []step{at(100, evt("A", 1, 0)), at(101, evt("B", 2, 3)), at(102, evt("C", 3, 10)), at(103, evt("D", 4, 25))}
	plain := func(o siddhiql.OutputEvents) func() *siddhiql.Query {
		return func() *siddhiql.Query { return query(win("externalTimeBatch", vr("ts"), il(10)), o, symQ(), nil, nil) }
	}
	timeout := func(o siddhiql.OutputEvents) func() *siddhiql.Query {
		return func() *siddhiql.Query {
			return query(win("externalTimeBatch", vr("ts"), il(10), il(0), il(5)), o,
				symSum(), nil, nil)
		}
	}
	tSteps := []step{at(100, evt("A", 1, 0)), adv(105), at(107, evt("B", 2, 4)), adv(110), at(120, evt("C", 3, 12)), at(121, evt("D", 4, 21))}
	runCases(t, []runCase{
		{"all events", plain(all), steps, []string{"C@100 A 1", "C@101 B 2", "E@25 A 1", "E@25 B 2", "C@102 C 3"}},
		{"current events", plain(cur), steps, []string{"C@100 A 1", "C@101 B 2", "C@102 C 3"}},
		{"expired events", plain(exp), steps, []string{"E@25 A 1", "E@25 B 2"}},
		{"group by sum", func() *siddhiql.Query {
			return query(win("externalTimeBatch", vr("ts"), tl(10)), cur, symSum(), []string{"symbol"}, nil)
		}, []step{at(1, evt("A", 1, 0), evt("B", 2, 1), evt("A", 3, 2)), at(2, evt("B", 1, 10))},
			[]string{"C@1 A 4", "C@1 B 2"}},
		{"timeout flushes then re-sends the grown batch", timeout(cur), tSteps,
			[]string{"C@100 A 1", "C@107 B 3", "C@120 C 3"}},
		// One row per flush: the last wanted event. The re-send expires A (sum → null).
		{"timeout, all events", timeout(all), tSteps, []string{"C@100 A 1", "C@107 B 3", "C@120 C 3"}},
		{"timeout, expired events", timeout(exp), tSteps, []string{"E@4 A null", "E@21 B null"}},
		{"replace timestamp with batch end", func() *siddhiql.Query {
			return query(win("externalTimeBatch", vr("ts"), il(10), il(0), il(0), bl(true)), cur,
				[]siddhiql.OutputAttr{out(vr("symbol"), ""), out(vr("ts"), "")}, nil, nil)
		}, []step{at(1, evt("A", 1, 3)), at(2, evt("B", 1, 12)), at(3, evt("C", 1, 20))},
			[]string{"C@1 A 10", "C@2 B 20"}},
	})
}

func TestCompile_OutputAttrs(t *testing.T) {
	q := mustCompile(t, query(win("length", il(5)), cur, []siddhiql.OutputAttr{
		out(vr("symbol"), ""), out(call("sum", vr("q")), "s"), out(call("sum", vr("price")), "sp"),
		out(call("count"), "c"), out(call("count", vr("q")), "c2"), out(call("avg", vr("q")), "a"),
		out(call("min", vr("price")), "mn"), out(call("max", vr("q")), "mx"), out(call("distinctCount", vr("symbol")), "d"),
		out(bin(siddhiql.OpMul, vr("q"), il(2)), "q2"), out(bin(siddhiql.OpDiv, call("sum", vr("q")), call("count")), "ratio"),
	}, nil, nil))
	var got []string
	for _, a := range q.OutputAttrs() {
		got = append(got, a.Name+":"+a.Type.String())
	}
	want := "symbol:string s:long sp:double c:long c2:long a:double mn:double mx:long d:long q2:long ratio:long"
	if strings.Join(got, " ") != want {
		t.Errorf("got %s\nwant %s", strings.Join(got, " "), want)
	}
}

func TestCompile_Errors(t *testing.T) {
	type errCase struct {
		name string
		q    func() (*siddhiql.Query, siddhiql.Pos)
		msg  string
	}
	sel := func(e siddhiql.Expr, alias string) []siddhiql.OutputAttr { return []siddhiql.OutputAttr{out(e, alias)} }
	cases := []errCase{
		{"unknown attribute", func() (*siddhiql.Query, siddhiql.Pos) {
			v := vr("nope")
			return query(nil, cur, sel(v, ""), nil, nil), v.Pos
		}, "no attribute"},
		{"sum of string", func() (*siddhiql.Query, siddhiql.Pos) {
			v := vr("symbol")
			return query(nil, cur, sel(call("sum", v), "s"), nil, nil), v.Pos
		}, "numeric"},
		{"sum arity", func() (*siddhiql.Query, siddhiql.Pos) {
			c := call("sum", vr("q"), vr("q"))
			return query(nil, cur, sel(c, "s"), nil, nil), c.Pos
		}, "exactly one argument"},
		{"count arity", func() (*siddhiql.Query, siddhiql.Pos) {
			c := call("count", vr("q"), vr("q"))
			return query(nil, cur, sel(c, "s"), nil, nil), c.Pos
		}, "no argument"},
		{"nested aggregate", func() (*siddhiql.Query, siddhiql.Pos) {
			in := call("sum", vr("q"))
			return query(nil, cur, sel(call("max", in), "s"), nil, nil), in.Pos
		}, "not allowed"},
		{"length of string", func() (*siddhiql.Query, siddhiql.Pos) {
			a := sl("x")
			return query(win("length", a), cur, symQ(), nil, nil), a.Pos
		}, "int"},
		{"length zero", func() (*siddhiql.Query, siddhiql.Pos) {
			a := il(0)
			return query(win("length", a), cur, symQ(), nil, nil), a.Pos
		}, "positive"},
		{"length of long", func() (*siddhiql.Query, siddhiql.Pos) {
			a := ll(3)
			return query(win("length", a), cur, symQ(), nil, nil), a.Pos
		}, "int constant"},
		{"length arity", func() (*siddhiql.Query, siddhiql.Pos) {
			w := win("length")
			return query(w, cur, symQ(), nil, nil), w.Pos
		}, "argument"},
		{"time of attribute", func() (*siddhiql.Query, siddhiql.Pos) {
			a := vr("q")
			return query(win("time", a), cur, symQ(), nil, nil), a.Pos
		}, "constant"},
		{"time of double", func() (*siddhiql.Query, siddhiql.Pos) {
			a := dl(1.5)
			return query(win("time", a), cur, symQ(), nil, nil), a.Pos
		}, "long"},
		{"externalTime on double", func() (*siddhiql.Query, siddhiql.Pos) {
			a := vr("price")
			return query(win("externalTime", a, il(10)), cur, symQ(), nil, nil), a.Pos
		}, "long attribute"},
		{"externalTime on constant", func() (*siddhiql.Query, siddhiql.Pos) {
			a := ll(5)
			return query(win("externalTime", a, il(10)), cur, symQ(), nil, nil), a.Pos
		}, "long attribute"},
		{"externalTimeBatch bad replace", func() (*siddhiql.Query, siddhiql.Pos) {
			a := il(1)
			return query(win("externalTimeBatch", vr("ts"), il(10), il(0), il(0), a), cur, symQ(), nil, nil), a.Pos
		}, "bool"},
		{"timeBatch bad start", func() (*siddhiql.Query, siddhiql.Pos) {
			a := sl("x")
			return query(win("timeBatch", il(10), a), cur, symQ(), nil, nil), a.Pos
		}, "start.time"},
		{"unknown window", func() (*siddhiql.Query, siddhiql.Pos) {
			w := win("sort", il(1))
			return query(w, cur, symQ(), nil, nil), w.Pos
		}, "unsupported window"},
		{"non-bool filter", func() (*siddhiql.Query, siddhiql.Pos) {
			f := vr("price")
			q := query(nil, cur, symQ(), nil, nil)
			q.Filter = f
			return q, f.Pos
		}, "bool"},
		{"non-bool post filter", func() (*siddhiql.Query, siddhiql.Pos) {
			f := bin(siddhiql.OpAdd, vr("q"), il(1))
			q := query(win("length", il(1)), cur, symQ(), nil, nil)
			q.PostFilter = f
			return q, f.Pos
		}, "bool"},
		{"non-bool having", func() (*siddhiql.Query, siddhiql.Pos) {
			h := vr("t")
			return query(nil, cur, symSum(), []string{"symbol"}, h), h.Pos
		}, "bool"},
		{"having on unselected attribute", func() (*siddhiql.Query, siddhiql.Pos) {
			v := vr("price")
			return query(nil, cur, symSum(), nil, bin(siddhiql.OpGt, v, il(1))), v.Pos
		}, "output attributes"},
		{"group by unknown", func() (*siddhiql.Query, siddhiql.Pos) {
			q := query(nil, cur, symSum(), []string{"sym"}, nil)
			return q, q.GroupBy[0].Pos
		}, "group by"},
		{"duplicate output", func() (*siddhiql.Query, siddhiql.Pos) {
			o := out(call("sum", vr("q")), "symbol")
			return query(nil, cur, []siddhiql.OutputAttr{out(vr("symbol"), ""), o}, nil, nil), o.Pos
		}, "duplicate"},
		{"unnamed expression", func() (*siddhiql.Query, siddhiql.Pos) {
			o := out(bin(siddhiql.OpAdd, vr("q"), il(1)), "")
			return query(nil, cur, []siddhiql.OutputAttr{o}, nil, nil), o.Pos
		}, "as"},
		{"unknown function", func() (*siddhiql.Query, siddhiql.Pos) {
			c := call("stddev", vr("q"))
			return query(nil, cur, sel(c, "s"), nil, nil), c.Pos
		}, "unknown function"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q, pos := tc.q()
			_, err := Compile(q, stockStream)
			se, ok := err.(*siddhiql.Error)
			if !ok {
				t.Fatalf("err = %v (%T), want *siddhiql.Error", err, err)
			}
			if se.Pos != pos {
				t.Errorf("pos = %v, want %v (%s)", se.Pos, pos, se.Msg)
			}
			if !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("msg = %q, want it to contain %q", se.Msg, tc.msg)
			}
		})
	}
}
