package window

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// ringAttrs is a stream with a column of every kind.
var ringAttrs = []siddhiql.Attribute{
	{Name: "s", Type: siddhiql.TypeString},
	{Name: "d", Type: siddhiql.TypeDouble},
	{Name: "l", Type: siddhiql.TypeLong},
	{Name: "b", Type: siddhiql.TypeBool},
	{Name: "o", Type: siddhiql.TypeObject},
	{Name: "f", Type: siddhiql.TypeFloat},
	{Name: "i", Type: siddhiql.TypeInt},
}

// ringValue is the j-th attribute of the k-th test event: mostly of the attribute's type,
// sometimes null, NaN, another numeric type, or (from odd, when set) a value no column of
// the attribute's kind holds.
func ringValue(k, j int, odd bool) expr.Value {
	switch {
	case k%11 == j:
		return expr.Null
	case odd && k%29 == 3 && j == 2:
		return expr.String(fmt.Sprint("not a long ", k)) // the long column turns to whole values
	case odd && k%31 == 5 && j == 0:
		return expr.Long(int64(k)) // and so does the string column
	}
	switch j {
	case 0:
		return expr.String(fmt.Sprintf("S%d", k%7))
	case 1:
		if k%13 == 0 {
			return expr.Double(math.NaN())
		}
		return expr.Double(float64(k) / 3)
	case 2:
		if k%5 == 0 {
			return expr.Int(int32(-k)) // an int in a long column
		}
		return expr.Long(int64(k) << 33)
	case 3:
		return expr.Bool(k%2 == 0)
	case 4:
		return expr.Value{T: siddhiql.TypeObject, S: fmt.Sprintf(`{"k":%d}`, k)}
	case 5:
		return expr.Float(float32(k) / 7)
	}
	return expr.Int(int32(k))
}

func ringRow(k int, odd bool) expr.Row {
	row := make(expr.Row, len(ringAttrs))
	for j := range row {
		row[j] = ringValue(k, j, odd)
	}
	return row
}

func sameValues(a, b expr.Row) bool {
	return slices.EqualFunc(a, b, func(x, y expr.Value) bool {
		return x.T == y.T && x.I == y.I && x.S == y.S && math.Float64bits(x.F) == math.Float64bits(y.F)
	})
}

// TestRing_MatchesEventSlice pushes and pops events (the ring wrapping around, growing
// while wrapped and shrinking as it drains) and checks after every step that the ring holds what a slice of events
// would, row for row, and encodes to the same bytes as encodeEvents, which wrote window
// states before the ring; and that a decoded ring encodes the same again.
func TestRing_MatchesEventSlice(t *testing.T) {
	for _, odd := range []bool{false, true} {
		t.Run(fmt.Sprint("odd=", odd), func(t *testing.T) {
			r := newRing(ringAttrs)
			var ref, prevRef []event
			var prevGot []expr.Row
			k, most := 0, 0
			for step := range 400 {
				// Pushes and pops in bursts, so the live events move around the slots.
				push, pop := (step*7)%23, (step*5)%19
				if step > 300 {
					push = 0 // drain
				}
				for range push {
					row := ringRow(k, odd)
					r.push(int64(k/4), row)
					row[0] = expr.String("overwritten") // the ring keeps a copy
					ref = append(ref, event{time: int64(k / 4), row: ringRow(k, odd)})
					k++
				}
				for range min(pop, len(ref)) {
					tm, row := r.take()
					if tm != ref[0].time || !sameValues(row, ref[0].row) {
						t.Fatalf("step %d: took %d %v, want %d %v", step, tm, row, ref[0].time, ref[0].row)
					}
					ref = ref[1:]
				}
				r.resetScratch()
				most = max(most, len(r.times))
				if r.len() != len(ref) {
					t.Fatalf("step %d: ring holds %d events, want %d", step, r.len(), len(ref))
				}
				got := r.contents()
				for i := range prevRef { // what an earlier call returned is left as it was
					if !sameValues(prevGot[i], prevRef[i].row) {
						t.Fatalf("step %d: contents of the step before changed at %d", step, i)
					}
				}
				prevGot, prevRef = got, slices.Clone(ref)
				for i := range ref {
					if r.time(i) != ref[i].time || !sameValues(got[i], ref[i].row) {
						t.Fatalf("step %d: event %d is %d %v, want %d %v", step, i, r.time(i), got[i], ref[i].time, ref[i].row)
					}
				}
				var a, b wire.Writer
				r.encode(&a)
				encodeEvents(&b, ref)
				if !bytes.Equal(a.Buf, b.Buf) {
					t.Fatalf("step %d: ring encodes differently from its events", step)
				}
				d := newRing(ringAttrs)
				d.decode(wire.NewReader(a.Buf), len(ringAttrs))
				var c wire.Writer
				d.encode(&c)
				if !bytes.Equal(c.Buf, a.Buf) {
					t.Fatalf("step %d: decoded ring encodes differently", step)
				}
			}
			if k < 1000 || len(ref) != 0 || most < 256 {
				t.Fatalf("pushed %d events, %d left, at most %d slots: the test did not run through", k, len(ref), most)
			}
			if len(r.times) > minSlots {
				t.Errorf("the empty ring keeps %d slots, want at most %d", len(r.times), minSlots)
			}
			if odd && (r.cols[0].kind != colAny || r.cols[2].kind != colAny || r.cols[1].kind != colNum) {
				t.Errorf("column kinds = %d %d %d, want the string and long columns turned to whole values", r.cols[0].kind, r.cols[1].kind, r.cols[2].kind)
			}
		})
	}
}

// TestRing_DecodeErrors: a stored event of the wrong width, or a cut state, fails the
// reader and leaves the ring empty.
func TestRing_DecodeErrors(t *testing.T) {
	r := newRing(ringAttrs)
	for k := range 5 {
		r.push(int64(k), ringRow(k, false))
	}
	var w wire.Writer
	r.encode(&w)
	for n := range len(w.Buf) {
		d := newRing(ringAttrs)
		d.push(1, ringRow(1, false))
		rd := wire.NewReader(w.Buf[:n])
		d.decode(rd, len(ringAttrs))
		if rd.Err() == nil {
			t.Fatalf("cut to %d bytes: no error", n)
		}
		if d.len() != 0 {
			t.Fatalf("cut to %d bytes: %d events left", n, d.len())
		}
	}
	narrow := newRing(ringAttrs[:3])
	rd := wire.NewReader(w.Buf)
	narrow.decode(rd, 3)
	if rd.Err() == nil {
		t.Error("events of 7 values decoded into a ring of 3 attributes")
	}
}

// inputs is every window kind over S, each query with a filter and a group by; used to
// check that no query keeps the rows handed to Process.
func inputsQueries() map[string]func() *siddhiql.Query {
	qs := stateQueries()
	qs["lengthBatch current kept"] = func() *siddhiql.Query {
		return query(win("lengthBatch", il(4), bl(true)), all, symSum(), []string{"symbol"}, nil)
	}
	qs["timeBatch current"] = func() *siddhiql.Query {
		return query(win("timeBatch", il(20), bl(true)), cur, symSum(), []string{"symbol"}, nil)
	}
	qs["externalTimeBatch replace"] = func() *siddhiql.Query {
		return query(win("externalTimeBatch", vr("ts"), il(30), il(0), il(15), bl(true)), all, symQ(), nil, nil)
	}
	qs["lengthBatch 0"] = func() *siddhiql.Query {
		return query(win("lengthBatch", il(0)), all, symSum(), nil, nil)
	}
	return qs
}

// TestQuery_InputRowsNotKept: for every window kind, overwriting the rows handed to Process
// once it returns changes neither the outputs nor the state.
func TestQuery_InputRowsNotKept(t *testing.T) {
	qs := inputsQueries()
	steps := bigScript(3, 150)
	for _, name := range sortedNames(qs) {
		t.Run(name, func(t *testing.T) {
			ref, q := mustCompile(t, qs[name]()), mustCompile(t, qs[name]())
			var want, got []string
			for i, st := range steps {
				run(ref, st, func(o Output) { want = append(want, fmtOut(o)) })
				var mine []expr.Row
				for _, r := range st.events {
					mine = append(mine, slices.Clone(r))
				}
				run(q, step{now: st.now, events: mine}, func(o Output) { got = append(got, fmtOut(o)) })
				for _, r := range mine {
					for j := range r {
						r[j] = expr.String("overwritten")
					}
				}
				if !bytes.Equal(encode(q), encode(ref)) {
					t.Fatalf("step %d: state differs once the input rows were overwritten", i)
				}
			}
			if len(want) == 0 {
				t.Fatal("the script produced no output")
			}
			if !slices.Equal(got, want) {
				t.Fatal("outputs differ once the input rows were overwritten")
			}
		})
	}
}

// bigScript is script with batches of up to 60 events, so windows hold hundreds of events
// and their rings wrap around and grow.
func bigScript(seed uint64, n int) []step {
	x := seed
	next := func(m uint64) int64 {
		x = x*6364136223846793005 + 1442695040888963407
		return int64((x >> 33) % m)
	}
	var steps []step
	now, ts := int64(1000), int64(0)
	for range n {
		now += next(6)
		if next(8) == 0 {
			steps = append(steps, adv(now))
			continue
		}
		var evs []expr.Row
		for range next(60) + 1 {
			ts += next(2)
			sym := string(rune('A' + next(4)))
			evs = append(evs, evp(sym, float64(next(50))/4, next(20)-3, ts))
		}
		steps = append(steps, at(now, evs...))
	}
	return steps
}

// TestQuery_EncodeDecodeContinue_Batches is TestQuery_EncodeDecodeContinue with large
// batches: restoring mid-window, with the windows' events spread around their rings,
// continues exactly.
func TestQuery_EncodeDecodeContinue_Batches(t *testing.T) {
	qs := inputsQueries()
	qs["time long"] = func() *siddhiql.Query {
		return query(win("time", tl(120)), all, symSum(), []string{"symbol"}, nil)
	}
	qs["length long"] = func() *siddhiql.Query {
		return query(win("length", il(500)), all, symSum(), []string{"symbol"}, nil)
	}
	checkContinue(t, qs, bigScript(5, 80), []int{1, 23, 60})
}
