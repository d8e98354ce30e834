package agg

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// shareDefs are aggregations whose cells may be shared: arrival and event time, every
// granularity or a few, with mins (null flags) and a purge.
var shareDefs = []string{
	`define aggregation A from S select k, sum(v) as total, count() as n, min(v) as lo group by k aggregate every sec ... year;`,
	`define aggregation A from S select k, sum(v) as total, max(v) as hi group by k aggregate by ts every sec ... year;`,
	`@purge(enable='true', interval='10 sec', @retentionPeriod(sec='120 sec', hours='2 days'))
define aggregation A from S select k, j, avg(v) as mean group by k, j aggregate by ts every sec, hour, month;`,
}

func shareDef(t *testing.T, text string) *Def {
	t.Helper()
	app, err := siddhiql.Parse("@app:name('A') define stream S (k string, j long, v long, ts long);\n" + text)
	if err != nil {
		t.Fatal(err)
	}
	def, err := Compile(app.Aggregations[0], app.Streams[0])
	if err != nil {
		t.Fatal(err)
	}
	return def
}

// dumpState prints everything a state hands out: its encoding, every granularity's rows,
// what a flush after since would write, and its row count.
func dumpState(s *State, since uint64) (enc []byte, rows string) {
	var w wire.Writer
	s.Encode(&w)
	var b strings.Builder
	for _, d := range s.def.Durations {
		for _, r := range s.Rows(d) {
			fmt.Fprintf(&b, "%s %d %d %v %v %d %d\n", d, r.AggTimestamp, r.EventTimestamp, r.Group, r.Bases, r.Index, r.LastEventTimestamp)
		}
	}
	changed := s.Changed(since)
	for _, d := range s.def.Durations {
		for _, r := range changed[d] {
			fmt.Fprintf(&b, "changed %s %d %d %s %v %d\n", d, r.AggTimestamp, r.EventTimestamp, r.GroupKey(), r.Bases, r.Index)
		}
	}
	fmt.Fprintf(&b, "len %d keys %d\n", s.Len(), s.Keys())
	return w.Buf, b.String()
}

// physical counts the cells a state holds (a shared cell once).
func physical(s *State) int {
	n := 0
	for _, g := range s.groups {
		n += len(g.cells)
	}
	return n
}

// TestSharedCells: a state that shares cells between granularities hands out exactly what a
// state with one cell per row does (same encoding, rows, flush rows, drops and purges) under
// random arrivals with late, out-of-order and pre-1970 event times, flushes, purges and
// restores (decoding shares the newest cells again); and it does share them.
func TestSharedCells(t *testing.T) { testSharedCells(t, false) }

// TestSharedCellsJoined is TestSharedCells for an aggregation that joins read: random
// granularities keep their closed rows (Retain, changed now and then), and JoinRows finds
// the same rows in both states, a shared cell standing for its row at the granularity
// joined.
func TestSharedCellsJoined(t *testing.T) { testSharedCells(t, true) }

func testSharedCells(t *testing.T, joined bool) {
	clock, _ := NewClock("")
	for di, text := range shareDefs {
		t.Run(fmt.Sprint(di), func(t *testing.T) {
			def := shareDef(t, text)
			seeds := uint64(3)
			if joined {
				seeds = 1 // bounded under -race: joins read every kept row
			}
			for seed := range seeds {
				sharedSeen := sharedRun(t, def, clock, di, seed, joined)
				if !sharedSeen {
					t.Errorf("seed %d: no cell was ever shared", seed)
				}
			}
		})
	}
}

// sharedRun is one seed of testSharedCells; it reports whether a cell was ever shared.
func sharedRun(t *testing.T, def *Def, clock *Clock, di int, seed uint64, joined bool) bool {
	t.Helper()
	stream := uint64(di)
	if joined {
		stream += 100
	}
	rng := rand.New(rand.NewPCG(seed, stream))
	ref, got := NewState(def, clock), NewState(def, clock)
	clear(ref.share)    // one cell per row
	ref.fast.off = true // every DropFlushed a full pass
	if seed == 2 {
		got.fast.limit = 30 // forgets now and then
	}
	retain := func() {
		var ds []siddhiql.Duration
		for _, d := range def.Durations {
			if rng.IntN(2) == 0 {
				ds = append(ds, d)
			}
		}
		all := rng.IntN(4) == 0
		ref.Retain(ds, all)
		got.Retain(ds, all)
	}
	if joined {
		retain()
	}
	now := int64(1514782800000) + rng.Int64N(3_600_000)
	var index, mark uint64
	sharedSeen, fastPasses := false, 0
	for step := range 200 {
		index++
		switch r := rng.IntN(100); {
		case r < 60:
			now += rng.Int64N(1500)
		case r < 80:
			now += rng.Int64N(120_000)
		case r < 95:
			now += rng.Int64N(4 * 3_600_000)
		default:
			now += rng.Int64N(40 * 86_400_000)
		}
		var events []expr.Row
		for range 1 + rng.IntN(8) {
			et := now
			switch r := rng.IntN(100); {
			case r < 15:
				et -= rng.Int64N(90_000)
			case r < 22:
				et -= rng.Int64N(3 * 86_400_000)
			case r < 26:
				et = -rng.Int64N(3_000) // before 1970: Java rounding
			case r < 28:
				et = -rng.Int64N(400 * 86_400_000)
			}
			events = append(events, expr.Row{
				expr.String(fmt.Sprintf("k%d", rng.IntN(6))), expr.Long(rng.Int64N(3)),
				expr.Long(rng.Int64N(200) - 50), expr.Long(et),
			})
		}
		if err := ref.Add(index, now, events); err != nil {
			t.Fatal(err)
		}
		if err := got.Add(index, now, events); err != nil {
			t.Fatal(err)
		}
		if rng.IntN(5) == 0 {
			flushed := index - min(index, uint64(rng.IntN(4)))
			mark = max(mark, flushed)
			if got.fastOK() {
				fastPasses++
			}
			if a, b := ref.DropFlushed(flushed), got.DropFlushed(flushed); a != b {
				t.Fatalf("seed %d step %d: DropFlushed dropped %d rows, want %d", seed, step, b, a)
			}
			if joined {
				// Every row that may go went: none is flushed and older than what is kept.
				for k, d := range def.Durations {
					for _, r := range got.Rows(d) {
						if r.Index <= flushed && r.AggTimestamp < got.dropBefore(k) {
							t.Fatalf("seed %d step %d: DropFlushed(%d) kept %s row %d (index %d)", seed, step, flushed, d, r.AggTimestamp, r.Index)
						}
					}
				}
			}
		}
		if rng.IntN(17) == 0 {
			a, b := ref.Purge(now), got.Purge(now)
			if fmt.Sprint(a) != fmt.Sprint(b) {
				t.Fatalf("seed %d step %d: Purge dropped %v, want %v", seed, step, b, a)
			}
		}
		if joined {
			if rng.IntN(30) == 0 {
				retain()
			}
			k := rng.IntN(len(def.Durations))
			per := def.Durations[k]
			start := now - rng.Int64N(2*RetentionSpan(per))
			end := start + rng.Int64N(RetentionSpan(per))
			if a, b := fmt.Sprint(ref.JoinRows(per, start, end)), fmt.Sprint(got.JoinRows(per, start, end)); a != b {
				t.Fatalf("seed %d step %d: JoinRows(%s, %d, %d) differ\n got: %s\nwant: %s", seed, step, per, start, end, b, a)
			}
		}
		since := index - uint64(rng.IntN(5))
		wantEnc, wantRows := dumpState(ref, since)
		gotEnc, gotRows := dumpState(got, since)
		if gotRows != wantRows {
			t.Fatalf("seed %d step %d: rows differ\n got:\n%s\nwant:\n%s", seed, step, gotRows, wantRows)
		}
		if !bytes.Equal(gotEnc, wantEnc) {
			t.Fatalf("seed %d step %d: encodings differ", seed, step)
		}
		if step%3 == 0 {
			checkBacklog(t, ref, mark, since)
			checkBacklog(t, got, mark, since)
		}
		if physical(got) < got.Len() {
			sharedSeen = true
		}
		if physical(ref) != ref.Len() {
			t.Fatalf("seed %d step %d: the unshared state holds %d cells for %d rows", seed, step, physical(ref), ref.Len())
		}
		if rng.IntN(25) == 0 {
			// Restore: the decoded state shares what it can, and carries on.
			restored := NewState(def, clock)
			restored.Retain(got.Retained(), false)
			if err := restored.Decode(wire.NewReader(gotEnc)); err != nil {
				t.Fatalf("seed %d step %d: decode: %v", seed, step, err)
			}
			if n := restored.Unflushed(); n != restored.Len() {
				t.Fatalf("seed %d step %d: a decoded state counts %d unflushed rows before it learns the flushed index, want all %d", seed, step, n, restored.Len())
			}
			restored.MarkFlushed(mark)
			enc, rows := dumpState(restored, since)
			if !bytes.Equal(enc, wantEnc) || rows != wantRows {
				t.Fatalf("seed %d step %d: the restored state differs\n got:\n%s\nwant:\n%s", seed, step, rows, wantRows)
			}
			got = restored
		}
	}
	if !joined && seed != 2 && fastPasses == 0 {
		t.Errorf("seed %d: DropFlushed never took the fast pass", seed)
	}
	return sharedSeen
}

// checkBacklog checks the flush backlog a state counts as rows change against the rows a
// flush after mark would write, and the chunk sizes ChangedCounts gives against the rows
// ChangedIn hands out for a chunk after since.
func checkBacklog(t *testing.T, s *State, mark, since uint64) {
	t.Helper()
	count := func(m map[siddhiql.Duration][]*Row) int {
		n := 0
		for _, rows := range m {
			n += len(rows)
		}
		return n
	}
	if want := count(s.Changed(mark)); s.Unflushed() != want {
		t.Fatalf("Unflushed is %d, but %d rows changed after the flushed index %d", s.Unflushed(), want, mark)
	}
	counts := map[uint64]int{}
	s.ChangedCounts(since, counts)
	byIndex := map[uint64]int{}
	for _, rows := range s.Changed(since) {
		for _, r := range rows {
			byIndex[r.Index]++
		}
	}
	if fmt.Sprint(counts) != fmt.Sprint(byIndex) {
		t.Fatalf("ChangedCounts(%d) = %v, but Changed hands out %v rows per index", since, counts, byIndex)
	}
	// A chunk up to the middle index holds the rows of the indexes up to it.
	var mid uint64
	for i := range counts {
		if mid == 0 || i < mid {
			mid = i
		}
	}
	want := 0
	for i, n := range counts {
		if i <= mid+1 {
			want += n
		}
	}
	if got := count(s.ChangedIn(since, mid+1)); got != want {
		t.Fatalf("ChangedIn(%d, %d) hands out %d rows, ChangedCounts says %d", since, mid+1, got, want)
	}
}

// TestSharedCellsSplit follows one key through the life of its cells: one cell for the six
// rows of its first event, a split when the next second's event leaves the first second's
// row behind, the second's row dropped once flushed, and a restore that shares again.
func TestSharedCellsSplit(t *testing.T) {
	def := shareDef(t, `define aggregation A from S select k, sum(v) as total group by k aggregate every sec ... year;`)
	clock, _ := NewClock("")
	s := NewState(def, clock)
	ev := func(v int64) []expr.Row {
		return []expr.Row{{expr.String("a"), expr.Long(0), expr.Long(v), expr.Long(0)}}
	}
	const t0 = 1514782800000
	if err := s.Add(1, t0, ev(1)); err != nil {
		t.Fatal(err)
	}
	if p, l := physical(s), s.Len(); p != 1 || l != 6 {
		t.Fatalf("after one event: %d cells for %d rows, want 1 for 6", p, l)
	}
	if err := s.Add(2, t0+1000, ev(2)); err != nil {
		t.Fatal(err)
	}
	// The first second's row alone, the new second's alone, minute…year together (sum 3).
	if p, l := physical(s), s.Len(); p != 3 || l != 7 {
		t.Fatalf("after the next second: %d cells for %d rows, want 3 for 7", p, l)
	}
	for _, d := range def.Durations[1:] {
		rows := s.Rows(d)
		if len(rows) != 1 || rows[0].Bases[0].I != 3 || rows[0].Index != 2 {
			t.Fatalf("%s rows = %v, want one with sum 3 at index 2", d, rows)
		}
	}
	if secs := s.Rows(siddhiql.Seconds); len(secs) != 2 || secs[0].Bases[0].I != 1 || secs[0].Index != 1 || secs[1].Bases[0].I != 2 {
		t.Fatalf("second rows = %v, want sums 1 (index 1) and 2", secs)
	}
	s.Advance(t0 + 2000)
	if n := s.DropFlushed(2); n != 2 {
		t.Fatalf("DropFlushed dropped %d rows, want the two closed seconds", n)
	}
	if p, l := physical(s), s.Len(); p != 1 || l != 5 {
		t.Fatalf("after the flush: %d cells for %d rows, want 1 for 5", p, l)
	}
	var w wire.Writer
	s.Encode(&w)
	// Unshared, the same state decodes to five cells; shared, to one.
	r := NewState(def, clock)
	if err := r.Decode(wire.NewReader(w.Buf)); err != nil {
		t.Fatal(err)
	}
	if p, l := physical(r), r.Len(); p != 1 || l != 5 {
		t.Fatalf("restored: %d cells for %d rows, want 1 for 5", p, l)
	}
	if g := r.groups[s.groupKeyOf(t, "a")]; g == nil || g.values[0].S != "a" {
		t.Fatalf("restored group values = %v", g)
	}
}

// groupKeyOf is the group key of a one-string group.
func (s *State) groupKeyOf(t *testing.T, k string) string {
	t.Helper()
	return string(expr.String(k).Key(nil))
}

// TestEventBucketBefore1970: an event's bucket does not depend on the events before it.
// Before 1970 a second rounds towards zero (Java's remainder), so -1500 ms is in the second
// starting at -1000 and -500 ms in the one starting at 0; a cache of the last bucket must not
// put -500 in -1000's (a restored replica, with an empty cache, would put it in 0's).
func TestEventBucketBefore1970(t *testing.T) {
	def := shareDef(t, `define aggregation A from S select k, sum(v) as total group by k aggregate by ts every sec;`)
	clock, _ := NewClock("")
	s := NewState(def, clock)
	ev := func(ts int64) expr.Row { return expr.Row{expr.String("a"), expr.Long(0), expr.Long(1), expr.Long(ts)} }
	if err := s.Add(1, 1514782800000, []expr.Row{ev(-1500), ev(-500)}); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range s.Rows(siddhiql.Seconds) {
		got = append(got, r.EventTimestamp)
	}
	if fmt.Sprint(got) != "[-1000 0]" {
		t.Errorf("event buckets = %v, want [-1000 0]", got)
	}
}

// TestChangedRowsDetached: a row Changed hands out without sets is not touched by later
// changes to the state, so Clone returns it as it is; one with sets is copied, and later
// events do not reach the copy.
func TestChangedRowsDetached(t *testing.T) {
	clock, _ := NewClock("")
	ev := func(v int64) []expr.Row {
		return []expr.Row{{expr.String("a"), expr.Long(v), expr.Long(v), expr.Long(0)}}
	}
	plain := NewState(shareDef(t, `define aggregation A from S select k, sum(v) as total group by k aggregate every sec;`), clock)
	sets := NewState(shareDef(t, `define aggregation A from S select k, distinctCount(j) as js group by k aggregate every sec;`), clock)
	for _, s := range []*State{plain, sets} {
		if err := s.Add(1, 1514782800000, ev(1)); err != nil {
			t.Fatal(err)
		}
	}
	r := plain.Changed(0)[siddhiql.Seconds][0]
	c := r.Clone()
	if c != r {
		t.Error("Clone copied a row Changed handed out without sets")
	}
	if err := plain.Add(2, 1514782800000, ev(5)); err != nil {
		t.Fatal(err)
	}
	if c.Bases[0].I != 1 || c.Index != 1 {
		t.Errorf("a later event reached the captured row: %v index %d", c.Bases, c.Index)
	}
	rs := sets.Changed(0)[siddhiql.Seconds][0]
	cs := rs.Clone()
	if cs == rs {
		t.Fatal("Clone returned a row that shares its sets with the state")
	}
	if err := sets.Add(2, 1514782800000, ev(7)); err != nil {
		t.Fatal(err)
	}
	if len(cs.Sets[0]) != 1 || len(rs.Sets[0]) != 2 {
		t.Errorf("sets: clone %v (want 1 member), state's row %v (want 2)", cs.Sets[0], rs.Sets[0])
	}
	if q := plain.Rows(siddhiql.Seconds)[0]; q.Clone() == q {
		t.Error("Clone returned a row Rows handed out as it is")
	}
}
