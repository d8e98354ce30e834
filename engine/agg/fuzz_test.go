package agg

import (
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// FuzzDecodeShardRows feeds arbitrary bytes to the decoder of rows sent between nodes, and
// runs a store query over whatever decodes: neither may panic, and what decodes re-encodes
// to rows that decode the same.
func FuzzDecodeShardRows(f *testing.F) {
	app, err := siddhiql.Parse(`@app:name('A') define stream S (k string, v long, w string, ts long);
define aggregation A from S select k, sum(v) as total, avg(v) as mean, distinctCount(w) as ws, w as lastW, min(v) as lo group by k aggregate by ts every sec, hour;`)
	if err != nil {
		f.Fatal(err)
	}
	def, err := Compile(app.Aggregations[0], app.Streams[0])
	if err != nil {
		f.Fatal(err)
	}
	q, err := siddhiql.ParseStoreQuery(`from A within 0L, 99999999999999L per "hours" select k, sum(total) as t, avg(mean) as m, max(ws) as ws, lastW, min(lo) as lo group by k order by t desc`)
	if err != nil {
		f.Fatal(err)
	}
	plan, err := Prepare(def, q)
	if err != nil {
		f.Fatal(err)
	}
	clock, _ := NewClock("")
	st := NewState(def, clock)
	ev := func(k string, v int64, w string, ts int64) expr.Row {
		return expr.Row{expr.String(k), expr.Long(v), expr.String(w), expr.Long(ts)}
	}
	if err := st.Add(1, 1514783400000, []expr.Row{ev("a", 1, "x", 1514783400000), ev("a", 2, "y", 1514783399000), ev("b", 3, "x", 1514783400500)}); err != nil {
		f.Fatal(err)
	}
	var rows []ShardRow
	for _, r := range st.Rows(siddhiql.Hours) {
		rows = append(rows, ShardRow{Shard: "s1", Row: r})
	}
	var w wire.Writer
	EncodeShardRows(&w, rows)
	f.Add(w.Buf)
	f.Add([]byte{1, 0, 1, 1, 'a'})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := def.DecodeShardRows(wire.NewReader(data))
		if err != nil {
			return
		}
		if _, err := plan.Run(Newest(got)); err != nil {
			t.Logf("run: %v", err)
		}
		var w wire.Writer
		EncodeShardRows(&w, got)
		again, err := def.DecodeShardRows(wire.NewReader(w.Buf))
		if err != nil || len(again) != len(got) {
			t.Fatalf("re-encoded rows do not decode: %v (%d rows, then %d)", err, len(got), len(again))
		}
	})
}
