package engine

import (
	"bytes"
	"fmt"
	"testing"
)

// Apps whose aggregation is read by joins: a trigger and the stream itself join it, and a
// second app reads it read-only.
var aggJoinDetApps = []string{`@app:name('AggJoinDet')
define stream Trades (symbol string, price double, qty long, ts long, venue string);
define trigger Tick7 at every 7 sec;
define aggregation TradeAgg from Trades
  select symbol, sum(qty) as total, avg(price) as avgPrice, count() as n
  group by symbol
  aggregate by ts every sec...hour;
from Tick7 join TradeAgg within triggered_time - 60000, triggered_time per "seconds"
  select symbol, total, n insert into SecJoin;
from Trades as t join TradeAgg as a on t.symbol == a.symbol within t.ts - 3600000, t.ts + 1 per "minutes"
  select t.symbol, sum(a.total) as total, count() as buckets group by t.symbol insert into MinJoin;
`, `@app:name('AggJoinReader')
define stream Trades2 (symbol string, price double, qty long, ts long, venue string);
define trigger Each at every 5 sec;
@persistedAggregation(enable='false', is.read.only='true')
define aggregation TradeAgg from Trades2
  select symbol, sum(qty) as total
  group by symbol
  aggregate by ts every sec...hour;
from Each join TradeAgg within triggered_time - 120000, triggered_time per "minutes"
  select symbol, total order by total desc limit 3 insert into ReadJoin;
`}

// runFlushing is run with a flush after every tick, as a leader's flush replicates it: the
// rows changed up to a few entries back are in the store and may be dropped.
func runFlushing(t *testing.T, e *Engine, steps []step) ([]string, int) {
	t.Helper()
	dropped := 0
	var outs []string
	for _, s := range steps {
		outs = append(outs, run(t, e, []step{s})...)
		if s.tick && s.index > 5 {
			dropped += e.DropFlushed(s.index - 5)
		}
	}
	return outs, dropped
}

// TestDeterminism_AggJoin: joins with an aggregation, with flushes dropping rows, give the
// same outputs and encodings on two engines; the rows kept for the joins are state, so
// restoring at several cuts and continuing equals never stopping.
func TestDeterminism_AggJoin(t *testing.T) {
	steps := workload(23, 400)
	a, b := newEngineApps(t, aggJoinDetApps), newEngineApps(t, aggJoinDetApps)
	oa, dropped := runFlushing(t, a, steps)
	ob, _ := runFlushing(t, b, steps)
	if dropped == 0 {
		t.Fatal("the flushes dropped nothing: the retention is not exercised")
	}
	for _, s := range []string{"SecJoin", "MinJoin", "ReadJoin"} {
		if !bytes.Contains([]byte(fmt.Sprint(oa)), []byte(" "+s+" ")) {
			t.Fatalf("no %s outputs: the workload tests nothing", s)
		}
	}
	if fmt.Sprint(oa) != fmt.Sprint(ob) {
		t.Fatal("same calls gave different outputs")
	}
	want := encode(t, a)
	if !bytes.Equal(want, encode(t, b)) {
		t.Fatal("same calls gave different encodings")
	}
	// Closed rows were kept: more than the open buckets' rows of five symbols.
	app, _ := a.App("AggJoinDet")
	st, _ := app.Aggregation("TradeAgg")
	if st.Len() <= 5*3 {
		t.Errorf("TradeAgg holds %d rows after the flushes, want closed rows kept for the joins", st.Len())
	}
	for _, cut := range []int{1, 90, 201, 399} {
		first := newEngineApps(t, aggJoinDetApps)
		out, _ := runFlushing(t, first, steps[:cut])
		snap := encode(t, first)
		second, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := second.UnmarshalBinary(snap); err != nil {
			t.Fatalf("cut %d: restore: %v", cut, err)
		}
		if !bytes.Equal(encode(t, second), snap) {
			t.Fatalf("cut %d: restore then encode changed the bytes", cut)
		}
		rest, _ := runFlushing(t, second, steps[cut:])
		if fmt.Sprint(append(out, rest...)) != fmt.Sprint(oa) {
			t.Errorf("cut %d: outputs after restore differ from an uninterrupted run", cut)
		}
		if !bytes.Equal(encode(t, second), want) {
			t.Errorf("cut %d: final state after restore differs from an uninterrupted run", cut)
		}
	}
}
