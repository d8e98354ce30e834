package agg

import (
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// TestNewest: per primary key the greatest index wins, across sources and shards.
func TestNewest(t *testing.T) {
	app, err := siddhiql.Parse(`@app:name('A') define stream S (k string, v long);
define aggregation A from S select k, sum(v) as total group by k aggregate every hour;`)
	if err != nil {
		t.Fatal(err)
	}
	def, err := Compile(app.Aggregations[0], app.Streams[0])
	if err != nil {
		t.Fatal(err)
	}
	row := func(k string, total int64, index uint64) *Row {
		return def.NewStoredRow(3600000, 0, []expr.Value{expr.String(k)}, nil, 0, []expr.Value{expr.Long(total)}, nil, index)
	}
	stored := []ShardRow{{"s1", row("a", 10, 5)}, {"s2", row("a", 7, 9)}, {"s1", row("b", 1, 3)}}
	memory := []ShardRow{{"s1", row("a", 12, 6)}, {"s1", row("b", 0, 2)}}
	got := Newest(stored, memory)
	if len(got) != 3 {
		t.Fatalf("Newest kept %d rows, want 3", len(got))
	}
	totals := map[string]int64{}
	for _, r := range got {
		totals[r.Group[0].S] += r.Bases[0].I
	}
	if totals["a"] != 12+7 || totals["b"] != 1 {
		t.Errorf("totals = %v, want a=19 (memory s1 index 6 + store s2), b=1 (store is newer)", totals)
	}
}

// TestShardRowsRoundTrip: rows sent between nodes come back equal, sets and latest values
// included.
func TestShardRowsRoundTrip(t *testing.T) {
	app, err := siddhiql.Parse(`@app:name('A') define stream S (k string, v long, w string, ts long);
define aggregation A from S select k, sum(v) as total, distinctCount(w) as ws, w as lastW, min(v) as lo group by k aggregate by ts every sec, hour;`)
	if err != nil {
		t.Fatal(err)
	}
	def, err := Compile(app.Aggregations[0], app.Streams[0])
	if err != nil {
		t.Fatal(err)
	}
	clock, _ := NewClock("")
	st := NewState(def, clock)
	ev := func(k string, v int64, w string, ts int64) expr.Row {
		return expr.Row{expr.String(k), expr.Long(v), expr.String(w), expr.Long(ts)}
	}
	if err := st.Add(1, 1514783400000, []expr.Row{ev("a", 1, "x", 1514783400000), ev("a", 2, "y", 1514783399000), ev("b", 3, "x", 1514783400500)}); err != nil {
		t.Fatal(err)
	}
	var rows []ShardRow
	for _, r := range st.Rows(siddhiql.Seconds) {
		rows = append(rows, ShardRow{Shard: "s1", Row: r})
	}
	var w wire.Writer
	EncodeShardRows(&w, rows)
	got, err := def.DecodeShardRows(wire.NewReader(w.Buf))
	if err != nil {
		t.Fatal(err)
	}
	var again wire.Writer
	EncodeShardRows(&again, got)
	if len(got) != len(rows) || string(again.Buf) != string(w.Buf) {
		t.Fatalf("round trip changed the rows: %d → %d rows", len(rows), len(got))
	}
	for i := range got {
		if got[i].Shard != "s1" || got[i].Row.GroupKey() != rows[i].Row.GroupKey() {
			t.Errorf("row %d: shard %q key %q", i, got[i].Shard, got[i].Row.GroupKey())
		}
	}
	if _, err := def.DecodeShardRows(wire.NewReader(w.Buf[:len(w.Buf)-3])); err == nil {
		t.Error("decoded truncated rows")
	}
}
