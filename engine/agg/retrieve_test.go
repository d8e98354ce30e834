package agg

import (
	"testing"

	"github.com/tally-db/tally/engine/expr"
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
