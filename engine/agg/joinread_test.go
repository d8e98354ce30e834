package agg

import (
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

func joinState(t *testing.T, zone string) *State {
	t.Helper()
	app, err := siddhiql.Parse(`@app:name('A') define stream S (k string, v long, ts long);
define aggregation A from S select k, sum(v) as total, avg(v) as mean, v as last group by k aggregate by ts every sec, day, month;`)
	if err != nil {
		t.Fatal(err)
	}
	def, err := Compile(app.Aggregations[0], app.Streams[0])
	if err != nil {
		t.Fatal(err)
	}
	clock, err := NewClock(zone)
	if err != nil {
		t.Fatal(err)
	}
	return NewState(def, clock)
}

// JoinRows merges an event bucket's rows from several arrival buckets, as a store query
// does, and orders by bucket, then group.
func TestJoinRows_MergesArrivalBuckets(t *testing.T) {
	st := joinState(t, "")
	ev := func(k string, v, ts int64) expr.Row { return expr.Row{expr.String(k), expr.Long(v), expr.Long(ts)} }
	const t0 = int64(1514764800000) // 2018-01-01 00:00 UTC
	if err := st.Add(1, t0+500, []expr.Row{ev("b", 1, t0+100), ev("a", 2, t0+200)}); err != nil {
		t.Fatal(err)
	}
	// A late event for second t0, arriving two seconds later: another arrival bucket.
	if err := st.Add(2, t0+2500, []expr.Row{ev("b", 5, t0+300), ev("a", 7, t0+1200)}); err != nil {
		t.Fatal(err)
	}
	rows := st.JoinRows(siddhiql.Seconds, t0, t0+2000)
	var got []string
	for _, r := range rows {
		got = append(got, string(expr.AppendJSONObject(nil, JoinAttrs(st.Def()), r)))
	}
	want := []string{
		`{"AGG_TIMESTAMP":1514764800000,"k":"a","total":2,"mean":2.0,"last":2}`,
		`{"AGG_TIMESTAMP":1514764800000,"k":"b","total":6,"mean":3.0,"last":5}`,
		`{"AGG_TIMESTAMP":1514764801000,"k":"a","total":7,"mean":7.0,"last":7}`,
	}
	if len(got) != len(want) {
		t.Fatalf("JoinRows = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d = %s, want %s", i, got[i], want[i])
		}
	}
	if rows := st.JoinRows(siddhiql.Minutes, t0, t0+60000); rows != nil {
		t.Errorf("a granularity the aggregation does not keep gave %d rows", len(rows))
	}
	if rows := st.JoinRows(siddhiql.Seconds, t0+2000, t0); rows != nil {
		t.Errorf("an empty range gave %d rows", len(rows))
	}
}

// Retain keeps JoinRetention closed arrival buckets of the granularities it names, counted
// on the calendar for months, and DropFlushed drops the rest.
func TestRetain_CalendarBuckets(t *testing.T) {
	st := joinState(t, "Asia/Kolkata")
	ev := func(ts int64) expr.Row { return expr.Row{expr.String("k"), expr.Long(1), expr.Long(ts)} }
	st.Retain([]siddhiql.Duration{siddhiql.Months}, false)
	if got := st.Retained(); len(got) != 1 || got[0] != siddhiql.Months {
		t.Fatalf("Retained = %v, want [months]", got)
	}
	// One event on the 15th of every month for 150 months from 2010-01.
	clock, _ := NewClock("Asia/Kolkata")
	start := clock.Start(1263513600000, siddhiql.Months) // 2010-01 local
	var idx uint64
	m := start
	for range 150 {
		idx++
		now := m + 14*86400000
		if err := st.Add(idx, now, []expr.Row{ev(now)}); err != nil {
			t.Fatal(err)
		}
		m = clock.Next(m, siddhiql.Months)
	}
	st.DropFlushed(idx)
	if n := len(st.Rows(siddhiql.Months)); n != JoinRetention+1 {
		t.Errorf("kept %d month rows, want %d (the open month and %d closed)", n, JoinRetention+1, JoinRetention)
	}
	if n := len(st.Rows(siddhiql.Days)); n != 1 {
		t.Errorf("kept %d day rows, want the open one only", n)
	}
	st.Retain(nil, false)
	st.DropFlushed(idx)
	if n := len(st.Rows(siddhiql.Months)); n != 1 || st.Retained() != nil {
		t.Errorf("without retention kept %d month rows (retained %v), want 1", n, st.Retained())
	}
}

func TestRetentionSpan(t *testing.T) {
	if got := RetentionSpan(siddhiql.Seconds); got != 120000 {
		t.Errorf("seconds: %d, want 120000", got)
	}
	if got := RetentionSpan(siddhiql.Minutes); got != 7200000 {
		t.Errorf("minutes: %d, want 7200000", got)
	}
}

// BenchmarkJoinRows: one join lookup (two minutes per minutes) in an aggregation of 10,000
// groups with 121 minutes kept each.
func BenchmarkJoinRows(b *testing.B) {
	app, err := siddhiql.Parse(`@app:name('A') define stream S (k string, v long);
define aggregation A from S select k, count() as n group by k aggregate every sec, min;`)
	if err != nil {
		b.Fatal(err)
	}
	def, err := Compile(app.Aggregations[0], app.Streams[0])
	if err != nil {
		b.Fatal(err)
	}
	clock, _ := NewClock("")
	st := NewState(def, clock)
	st.Retain([]siddhiql.Duration{siddhiql.Minutes}, false)
	const t0 = int64(1514764800000)
	rows := make([]expr.Row, 10000)
	for i := range rows {
		rows[i] = expr.Row{expr.String("key" + string(rune('a'+i%26)) + expr.Long(int64(i)).String()), expr.Long(1)}
	}
	for m := range int64(121) {
		if err := st.Add(uint64(m+1), t0+m*60000, rows); err != nil {
			b.Fatal(err)
		}
		st.DropFlushed(uint64(m + 1))
	}
	now := t0 + 120*60000
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if got := st.JoinRows(siddhiql.Minutes, now-120000, now); len(got) != 20000 {
			b.Fatalf("%d rows, want 20000", len(got))
		}
	}
}

// benchRetained is an aggregation of 10,000 groups that keep 121 minutes each for a join.
func benchRetained(b *testing.B) *State {
	b.Helper()
	app, err := siddhiql.Parse(`@app:name('A') define stream S (k string, v long);
define aggregation A from S select k, count() as n group by k aggregate every sec, min;`)
	if err != nil {
		b.Fatal(err)
	}
	def, err := Compile(app.Aggregations[0], app.Streams[0])
	if err != nil {
		b.Fatal(err)
	}
	clock, _ := NewClock("")
	st := NewState(def, clock)
	st.Retain([]siddhiql.Duration{siddhiql.Minutes}, false)
	const t0 = int64(1514764800000)
	rows := make([]expr.Row, 10000)
	for i := range rows {
		rows[i] = expr.Row{expr.String("key" + expr.Long(int64(i)).String()), expr.Long(1)}
	}
	for m := range int64(121) {
		if err := st.Add(uint64(m+1), t0+m*60000, rows); err != nil {
			b.Fatal(err)
		}
	}
	return st
}

// BenchmarkDropFlushedRetained: a flush when 10,000 groups each keep 121 minutes for a join
// and nothing is due to go since the last flush.
func BenchmarkDropFlushedRetained(b *testing.B) {
	st := benchRetained(b)
	st.DropFlushed(121)
	b.ResetTimer()
	for range b.N {
		if n := st.DropFlushed(121); n != 0 {
			b.Fatalf("dropped %d", n)
		}
	}
}

func retainedSecMin(t *testing.T) *State {
	t.Helper()
	app, err := siddhiql.Parse(`@app:name('A') define stream S (k string, v long);
define aggregation A from S select k, count() as n group by k aggregate every sec, min;`)
	if err != nil {
		t.Fatal(err)
	}
	def, err := Compile(app.Aggregations[0], app.Streams[0])
	if err != nil {
		t.Fatal(err)
	}
	clock, _ := NewClock("")
	st := NewState(def, clock)
	st.Retain([]siddhiql.Duration{siddhiql.Minutes}, false)
	return st
}

// A flush that drops nothing remembers the closed rows it kept only because they were not
// flushed yet, and the next flush that covers them drops them, in a group it did not
// otherwise look at.
func TestDropRetained_RowsWaitingForFlush(t *testing.T) {
	st := retainedSecMin(t)
	const t0 = int64(1514764800000)
	ev := func(k string) []expr.Row { return []expr.Row{{expr.String(k), expr.Long(1)}} }
	if err := st.Add(1, t0, ev("a")); err != nil {
		t.Fatal(err)
	}
	if err := st.Add(2, t0+1000, ev("b")); err != nil { // closes a's second
		t.Fatal(err)
	}
	for range 2 {
		if n := st.DropFlushed(0); n != 0 {
			t.Fatalf("DropFlushed(0) dropped %d rows, want none flushed", n)
		}
	}
	if n := st.DropFlushed(1); n != 1 {
		t.Fatalf("DropFlushed(1) dropped %d rows, want a's closed second", n)
	}
	if n := st.DropFlushed(2); n != 0 {
		t.Fatalf("DropFlushed(2) dropped %d rows, want none (b's second is open)", n)
	}
	if got := len(st.Rows(siddhiql.Seconds)); got != 1 {
		t.Errorf("%d second rows kept, want b's open one", got)
	}
	if got := len(st.Rows(siddhiql.Minutes)); got != 2 {
		t.Errorf("%d minute rows kept, want a's and b's", got)
	}
}

// Decode replaces the rows a flush that dropped nothing looked at: the next flush looks
// again.
func TestDropRetained_AfterDecode(t *testing.T) {
	const t0 = int64(1514764800000)
	ev := func(k string) []expr.Row { return []expr.Row{{expr.String(k), expr.Long(1)}} }
	src := retainedSecMin(t)
	if err := src.Add(1, t0, ev("a")); err != nil {
		t.Fatal(err)
	}
	if err := src.Add(2, t0+1000, ev("b")); err != nil {
		t.Fatal(err)
	}
	var w wire.Writer
	src.Encode(&w)

	st := retainedSecMin(t)
	if err := st.Add(2, t0+1000, ev("b")); err != nil {
		t.Fatal(err)
	}
	if n := st.DropFlushed(2); n != 0 {
		t.Fatalf("DropFlushed(2) dropped %d rows, want none", n)
	}
	if err := st.Decode(wire.NewReader(w.Buf)); err != nil {
		t.Fatal(err)
	}
	if n := st.DropFlushed(2); n != 1 {
		t.Fatalf("DropFlushed(2) after Decode dropped %d rows, want a's closed second", n)
	}
}

// BenchmarkDropFlushedRetainedLook is BenchmarkDropFlushedRetained when the flush cannot
// tell from the last one that nothing is due (after a restore; the open second moved) and
// looks at every group.
func BenchmarkDropFlushedRetainedLook(b *testing.B) {
	st := benchRetained(b)
	st.DropFlushed(121)
	b.ResetTimer()
	for range b.N {
		st.retain.forget()
		if n := st.DropFlushed(121); n != 0 {
			b.Fatalf("dropped %d", n)
		}
	}
}
