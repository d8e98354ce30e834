package window

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"testing"
	"unsafe"

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
	case odd && k > 400 && k%37 == 2 && j == 4:
		return expr.Double(float64(k)) // and the object column, once it keeps plain strings
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

// ringBlocks is the blocks a ring holds, the spare one included, and their slots.
func ringBlocks(r *ring) (blocks, slots int) {
	for _, b := range r.blks[r.bh:] {
		blocks, slots = blocks+1, slots+len(b.times)
	}
	if r.spare != nil {
		blocks, slots = blocks+1, slots+len(r.spare.times)
	}
	return blocks, slots
}

// TestRing_MatchesEventSlice pushes and pops events (through many blocks, the only block
// growing and compacting while small, string columns switching from ids to plain strings
// and columns to whole values) and checks after every step that the ring holds what a slice
// of events would, row for row, and encodes to the same bytes as encodeEvents, which wrote
// window states before the ring; and that a decoded ring encodes the same again.
func TestRing_MatchesEventSlice(t *testing.T) {
	for _, size := range []struct {
		shift   uint
		minDict int
	}{{3, 16}, {5, 64}, {5, 8}, {blockShift, minDict}} {
		for _, odd := range []bool{false, true} {
			t.Run(fmt.Sprint("shift=", size.shift, "/odd=", odd), func(t *testing.T) {
				testRingMatches(t, size.shift, size.minDict, odd)
			})
		}
	}
}

func testRingMatches(t *testing.T, shift uint, minDict int, odd bool) {
	r := newRingSized(ringAttrs, shift, minDict)
	var ref, prevRef []event
	var prevGot []expr.Row
	k, most := 0, 0
	for step := range 400 {
		// Pushes and pops in bursts, so the live events move through the blocks.
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
		blocks, slots := ringBlocks(r)
		most = max(most, blocks)
		if slots < r.len() || slots > r.len()+3<<shift+minSlots {
			t.Fatalf("step %d: %d events in %d blocks of %d slots", step, r.len(), blocks, slots)
		}
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
			for j := range ringAttrs {
				if (i+j+step)%4 != 0 {
					continue // a sample: row has read every value already
				}
				if v := r.value(i, j); !sameValues(expr.Row{v}, ref[i].row[j:j+1]) {
					t.Fatalf("step %d: value %d of event %d is %v, want %v", step, j, i, v, ref[i].row[j])
				}
			}
		}
		var a, b wire.Writer
		r.encode(&a)
		encodeEvents(&b, ref)
		if !bytes.Equal(a.Buf, b.Buf) {
			t.Fatalf("step %d: ring encodes differently from its events", step)
		}
		if step%2 == 1 && step < 390 {
			continue // decoding every other step is enough
		}
		d := newRingSized(ringAttrs, shift, minDict)
		d.decode(wire.NewReader(a.Buf), len(ringAttrs))
		var c wire.Writer
		d.encode(&c)
		if !bytes.Equal(c.Buf, a.Buf) {
			t.Fatalf("step %d: decoded ring encodes differently", step)
		}
	}
	if k < 1000 || len(ref) != 0 || most < 2 || (shift < blockShift && most < 20) {
		t.Fatalf("pushed %d events, %d left, at most %d blocks: the test did not run through", k, len(ref), most)
	}
	if blocks, _ := ringBlocks(r); blocks > 1 {
		t.Errorf("the empty ring keeps %d blocks, want at most 1", blocks)
	}
	kinds := []colKind{r.cols[0].kind, r.cols[1].kind, r.cols[2].kind, r.cols[4].kind}
	want := []colKind{colID, colNum, colNum, colStr} // the object column has a new string per event
	if minDict > k {
		want[3] = colID // too few events to switch
	}
	if odd {
		want = []colKind{colAny, colNum, colAny, colAny}
	}
	if !slices.Equal(kinds, want) {
		t.Errorf("kinds of columns s, d, l, o = %v, want %v", kinds, want)
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

// TestRing_DictionaryIDs: a string column keeps plain strings while its ring fits a small
// block, then numbers its strings, copies them (a string pushed as part of a larger one
// does not keep it), frees an id once no event holds it and reuses it, and a value popped
// and pushed again comes back equal; a value of another type turns the ids to whole values.
func TestRing_DictionaryIDs(t *testing.T) {
	attrs := []siddhiql.Attribute{{Name: "s", Type: siddhiql.TypeString}, {Name: "v", Type: siddhiql.TypeLong}}
	r := newRingSized(attrs, 3, minDict) // blocks of 8 slots
	body := "IBM,WSO2,ORCL,"
	words := []string{body[0:3], body[4:8], body[9:13], ""}
	for i := range 4 {
		r.push(0, expr.Row{expr.String(words[i]), expr.Long(int64(i))})
	}
	if r.cols[0].kind != colStr || r.cols[0].dict != nil {
		t.Fatalf("a ring of 4 events: string column kind %d, want plain strings", r.cols[0].kind)
	}
	r.clear()
	for round := range 50 {
		for i := range 40 {
			r.push(int64(round), expr.Row{expr.String(words[(i+round)%len(words)]), expr.Long(int64(i))})
		}
		for i := range 40 {
			_, row := r.take()
			if want := words[(i+round)%len(words)]; row[0].S != want || row[0].T != siddhiql.TypeString || row[1].I != int64(i) {
				t.Fatalf("round %d: took %v, want %q %d", round, row, want, i)
			}
		}
		r.resetScratch()
		if d := r.cols[0].dict; len(d.ids) != 0 || len(d.strs) != 4 || len(d.free) != 3 {
			t.Fatalf("round %d: drained dictionary holds %d strings, %d ids, %d free; want 0, 4 (3 and the empty string), 3",
				round, len(d.ids), len(d.strs), len(d.free))
		}
	}
	r.push(1, expr.Row{expr.String(words[1]), expr.Null})
	d := r.cols[0].dict
	id := d.ids["WSO2"]
	if id == 0 || d.refs[id] != 1 {
		t.Fatalf("WSO2 has id %d held %d times, want a counted id held once", id, d.refs[id])
	}
	if unsafe.StringData(d.strs[id]) == unsafe.StringData(words[1]) {
		t.Error("the dictionary keeps the pushed string, and with it the string it is part of")
	}
	r.push(2, expr.Row{expr.Long(3), expr.Long(4)})
	r.push(3, expr.Row{expr.String("IBM"), expr.Long(5)})
	want := []expr.Row{{expr.String("WSO2"), expr.Null}, {expr.Long(3), expr.Long(4)}, {expr.String("IBM"), expr.Long(5)}}
	if r.cols[0].kind != colAny || r.len() != len(want) {
		t.Fatalf("after a long: column kind %d and %d events, want whole values and %d", r.cols[0].kind, r.len(), len(want))
	}
	for i := range want {
		row := make(expr.Row, 2)
		r.row(i, row)
		if !sameValues(row, want[i]) {
			t.Errorf("event %d is %v, want %v", i, row, want[i])
		}
	}
}

// TestRing_DictionarySwitch: a string column of more distinct strings than
// max(minDict, events/4) switches to plain strings once (ids no longer counted), and a value
// of another type arriving afterwards turns it to whole values; values stay as pushed.
func TestRing_DictionarySwitch(t *testing.T) {
	attrs := []siddhiql.Attribute{{Name: "id", Type: siddhiql.TypeString}, {Name: "sym", Type: siddhiql.TypeString}}
	r := newRing(attrs)
	var ref []expr.Row
	check := func(what string) {
		t.Helper()
		if r.len() != len(ref) {
			t.Fatalf("%s: %d events, want %d", what, r.len(), len(ref))
		}
		for i := range ref {
			row := make(expr.Row, 2)
			r.row(i, row)
			if !sameValues(row, ref[i]) {
				t.Fatalf("%s: event %d is %v, want %v", what, i, row, ref[i])
			}
		}
	}
	push := func(k int) {
		row := expr.Row{expr.String(fmt.Sprint("order-", k)), expr.String(fmt.Sprint("S", k%3))}
		if k%10 == 0 {
			row[1] = expr.Null
		}
		r.push(int64(k), row)
		ref = append(ref, row)
	}
	for k := range minDict {
		push(k)
		if k%3 == 0 { // hold fewer than 4*minDict events: the limit is minDict
			r.pop()
			ref = ref[1:]
		}
	}
	if r.cols[0].kind != colID || len(r.cols[0].dict.ids) != r.len() {
		t.Fatalf("before the limit: column kind %d, want ids", r.cols[0].kind)
	}
	check("ids")
	for k := minDict; k < 3*minDict; k++ {
		push(k)
	}
	if r.cols[0].kind != colStr || r.cols[0].dict != nil || r.cols[1].kind != colID {
		t.Fatalf("past the limit: column kinds %d %d, want plain strings and ids", r.cols[0].kind, r.cols[1].kind)
	}
	check("plain strings")
	for range 2000 {
		r.pop()
		ref = ref[1:]
	}
	push(1 << 20)
	if r.cols[0].kind != colStr {
		t.Fatal("the column went back to ids")
	}
	row := expr.Row{expr.Long(7), expr.Double(1.5)} // fits neither column
	r.push(99, row)
	ref = append(ref, row)
	if r.cols[0].kind != colAny || r.cols[1].kind != colAny {
		t.Fatalf("after a long and a double: column kinds %d %d, want whole values", r.cols[0].kind, r.cols[1].kind)
	}
	check("whole values")
}

// TestRing_SteadyNoAllocs: a window that stays the same size (pop a batch of up to a block,
// push as many) allocates nothing, across block boundaries and with string columns.
func TestRing_SteadyNoAllocs(t *testing.T) {
	for _, batch := range []int{1, 1000, 1 << blockShift} {
		r := newRing(ringAttrs[:4])
		rows := make([]expr.Row, 64)
		for k := range rows {
			rows[k] = ringRow(k, false)[:4]
		}
		for k := range 5000 {
			r.push(int64(k), rows[k%len(rows)])
		}
		k := 0
		allocs := testing.AllocsPerRun(50, func() {
			for range batch {
				r.pop()
			}
			for range batch {
				r.push(int64(k), rows[k%len(rows)])
				k++
			}
		})
		if allocs != 0 {
			t.Errorf("batches of %d: popping and pushing allocates %.2f times", batch, allocs)
		}
		if blocks, _ := ringBlocks(r); blocks > 5000>>blockShift+3 {
			t.Errorf("batches of %d: %d events in %d blocks", batch, r.len(), blocks)
		}
	}
}
