package window

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// script is a deterministic pseudo-random call sequence: increasing stamped times (with an
// occasional step back), one to three events per call, sometimes an Advance alone, and
// event times that mostly increase.
func script(seed uint64, n int) []step {
	x := seed
	next := func(m uint64) int64 {
		x = x*6364136223846793005 + 1442695040888963407
		return int64((x >> 33) % m)
	}
	var steps []step
	now, ts := int64(1000), int64(0)
	for range n {
		now += next(12)
		if next(10) == 0 {
			steps = append(steps, adv(now))
			continue
		}
		t := now
		if next(15) == 0 {
			t = now - 20 // a stale stamp: the query must keep its clock
		}
		var evs []expr.Row
		for range next(3) + 1 {
			ts += next(9)
			sym := string(rune('A' + next(3)))
			evs = append(evs, evp(sym, float64(next(50))/4, next(20)-3, ts))
		}
		steps = append(steps, at(t, evs...))
	}
	return steps
}

func stateQueries() map[string]func() *siddhiql.Query {
	sel := func() []siddhiql.OutputAttr {
		return []siddhiql.OutputAttr{
			out(vr("symbol"), ""), out(call("sum", vr("q")), "t"), out(call("count"), "c"),
			out(call("min", vr("price")), "mn"), out(call("max", vr("q")), "mx"),
			out(call("avg", vr("price")), "a"), out(call("distinctCount", vr("q")), "d"),
		}
	}
	mk := func(w func() *siddhiql.Window) func() *siddhiql.Query {
		return func() *siddhiql.Query {
			var wn *siddhiql.Window
			if w != nil {
				wn = w()
			}
			q := query(wn, all, sel(), []string{"symbol"}, bin(siddhiql.OpGt, vr("c"), il(0)))
			q.Filter = bin(siddhiql.OpNe, vr("q"), il(5))
			return q
		}
	}
	rated := func(w func() *siddhiql.Window, r siddhiql.OutputRate) func() *siddhiql.Query {
		return func() *siddhiql.Query {
			q := mk(w)()
			q.Rate = &r
			return q
		}
	}
	length := func() *siddhiql.Window { return win("length", il(3)) }
	timeW := func() *siddhiql.Window { return win("time", tl(25)) }
	batch := func() *siddhiql.Window { return win("lengthBatch", il(3)) }
	return map[string]func() *siddhiql.Query{
		"rate all every 4 events":   rated(batch, siddhiql.OutputRate{Kind: siddhiql.RateAll, Events: 4}),
		"rate first every 3 events": rated(nil, siddhiql.OutputRate{Kind: siddhiql.RateFirst, Events: 3}),
		"rate last every 5 events":  rated(length, siddhiql.OutputRate{Kind: siddhiql.RateLast, Events: 5}),
		"rate all every 20 ms":      rated(timeW, siddhiql.OutputRate{Kind: siddhiql.RateAll, Millis: 20}),
		"rate first every 15 ms":    rated(length, siddhiql.OutputRate{Kind: siddhiql.RateFirst, Millis: 15}),
		"rate last every 30 ms":     rated(nil, siddhiql.OutputRate{Kind: siddhiql.RateLast, Millis: 30}),
		"rate snapshot none":        rated(nil, siddhiql.OutputRate{Kind: siddhiql.RateSnapshot, Millis: 20}),
		"rate snapshot time":        rated(timeW, siddhiql.OutputRate{Kind: siddhiql.RateSnapshot, Millis: 20}),
		"rate snapshot lengthBatch": rated(batch, siddhiql.OutputRate{Kind: siddhiql.RateSnapshot, Millis: 20}),
		"none":                      mk(nil),
		"length":                    mk(func() *siddhiql.Window { return win("length", il(3)) }),
		"lengthBatch":               mk(func() *siddhiql.Window { return win("lengthBatch", il(3)) }),
		"lengthBatch current":       mk(func() *siddhiql.Window { return win("lengthBatch", il(3), bl(true)) }),
		"time":                      mk(func() *siddhiql.Window { return win("time", tl(25)) }),
		"timeBatch":                 mk(func() *siddhiql.Window { return win("timeBatch", il(20)) }),
		"timeBatch start":           mk(func() *siddhiql.Window { return win("timeBatch", il(20), ll(5), bl(true)) }),
		"externalTime":              mk(func() *siddhiql.Window { return win("externalTime", vr("ts"), il(30)) }),
		"externalTimeBatch":         mk(func() *siddhiql.Window { return win("externalTimeBatch", vr("ts"), il(30)) }),
		"externalTimeBatch to":      mk(func() *siddhiql.Window { return win("externalTimeBatch", vr("ts"), il(30), il(0), il(15)) }),
	}
}

func encode(q *Query) []byte {
	var w wire.Writer
	q.Encode(&w)
	return w.Buf
}

func sortedNames(m map[string]func() *siddhiql.Query) []string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func TestQuery_SameCallsSameBytes(t *testing.T) {
	qs := stateQueries()
	for _, name := range sortedNames(qs) {
		t.Run(name, func(t *testing.T) {
			a, b := mustCompile(t, qs[name]()), mustCompile(t, qs[name]())
			var outA, outB []string
			for i, st := range script(7, 300) {
				run(a, st, func(o Output) { outA = append(outA, fmtOut(o)) })
				run(b, st, func(o Output) { outB = append(outB, fmtOut(o)) })
				if !bytes.Equal(encode(a), encode(b)) {
					t.Fatalf("step %d: encodings differ", i)
				}
			}
			if !slices.Equal(outA, outB) {
				t.Fatal("outputs differ")
			}
			if len(outA) == 0 {
				t.Fatal("script produced no output")
			}
		})
	}
}

func TestQuery_EncodeDecodeContinue(t *testing.T) {
	checkContinue(t, stateQueries(), script(42, 200), []int{0, 1, 2, 5, 17, 50, 99, 150, 199})
}

// checkContinue runs steps on each query, and for each split runs steps[:split] on a fresh
// query, encodes it, decodes into another fresh query and runs the rest there: the
// re-encoding, the encoding after every later step and all outputs must equal those of the
// uninterrupted run.
func checkContinue(t *testing.T, qs map[string]func() *siddhiql.Query, steps []step, splits []int) {
	t.Helper()
	for _, name := range sortedNames(qs) {
		t.Run(name, func(t *testing.T) {
			ref := mustCompile(t, qs[name]())
			var want []string
			var refEnc [][]byte // encoding after each step
			for _, st := range steps {
				run(ref, st, func(o Output) { want = append(want, fmtOut(o)) })
				refEnc = append(refEnc, encode(ref))
			}
			if len(want) == 0 {
				t.Fatal("the steps produced no output")
			}
			for _, split := range splits {
				q := mustCompile(t, qs[name]())
				var got []string
				emit := func(o Output) { got = append(got, fmtOut(o)) }
				for _, st := range steps[:split] {
					run(q, st, emit)
				}
				enc := encode(q)
				fresh := mustCompile(t, qs[name]())
				if err := fresh.Decode(wire.NewReader(enc)); err != nil {
					t.Fatalf("split %d: Decode: %v", split, err)
				}
				if !bytes.Equal(encode(fresh), enc) {
					t.Fatalf("split %d: re-encoding differs", split)
				}
				for i, st := range steps[split:] {
					run(fresh, st, emit)
					if !bytes.Equal(encode(fresh), refEnc[split+i]) {
						t.Fatalf("split %d: encoding differs at step %d", split, split+i)
					}
				}
				if !slices.Equal(got, want) {
					t.Fatalf("split %d: outputs differ:\n got  %d rows\n want %d rows", split, len(got), len(want))
				}
			}
		})
	}
}

func TestQuery_DecodeErrors(t *testing.T) {
	mk := func() *Query {
		return mustCompile(t, query(win("length", il(3)), all, symSum(), []string{"symbol"}, nil))
	}
	q := mk()
	q.Process(1, []expr.Row{ev("A", 1), ev("B", 2)}, func(Output) {})
	enc := encode(q)
	for i := range len(enc) {
		if err := mk().Decode(wire.NewReader(enc[:i])); err == nil {
			t.Errorf("truncated to %d bytes: no error", i)
		} else if !errors.Is(err, ErrState) {
			t.Errorf("truncated to %d bytes: %v does not wrap ErrState", i, err)
		}
	}
	bad := append([]byte{99}, enc[1:]...)
	if err := mk().Decode(wire.NewReader(bad)); !errors.Is(err, ErrState) {
		t.Errorf("bad version: err = %v", err)
	}
	// A state from a query over a narrower stream does not fit.
	narrow := &siddhiql.StreamDef{Name: "S", Attributes: stockStream.Attributes[:3]}
	nq, err := Compile(query(win("length", il(3)), all, symSum(), []string{"symbol"}, nil), narrow)
	if err != nil {
		t.Fatal(err)
	}
	nq.Process(1, []expr.Row{ev("A", 1)[:3]}, func(Output) {})
	if err := mk().Decode(wire.NewReader(encode(nq))); err == nil {
		t.Error("state of a narrower stream decoded without error")
	}
}

func TestQuery_InputRowsAreCopied(t *testing.T) {
	q := mustCompile(t, query(win("length", il(2)), all, symQ(), nil, nil))
	row := ev("A", 1)
	q.Process(1, []expr.Row{row}, func(Output) {})
	row[0] = expr.String("mutated")
	var got []string
	q.Process(2, []expr.Row{ev("B", 2), ev("C", 3)}, func(o Output) { got = append(got, fmtOut(o)) })
	want := []string{"C@2 B 2", "E@2 A 1", "C@2 C 3"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
}

func ExampleQuery_Process() {
	// from S#window.lengthBatch(2) select symbol, sum(q) as t group by symbol insert into O;
	q, err := Compile(&siddhiql.Query{
		From:   "S",
		Window: &siddhiql.Window{Name: "lengthBatch", Args: []siddhiql.Expr{&siddhiql.Literal{Type: siddhiql.TypeInt, Int: 2}}},
		Select: []siddhiql.OutputAttr{
			{Expr: &siddhiql.Variable{Name: "symbol"}},
			{Expr: &siddhiql.Call{Name: "sum", Args: []siddhiql.Expr{&siddhiql.Variable{Name: "q"}}}, Alias: "t"},
		},
		GroupBy: []*siddhiql.Variable{{Name: "symbol"}},
		Into:    "O",
	}, stockStream)
	if err != nil {
		panic(err)
	}
	print := func(o Output) { fmt.Println(o.Kind, o.Time, o.Row[0].S, o.Row[1]) }
	q.Process(10, []expr.Row{ev("IBM", 5)}, print)
	q.Process(11, []expr.Row{ev("IBM", 7)}, print)
	// Output:
	// CURRENT 11 IBM 12
}
