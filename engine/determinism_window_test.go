package engine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tally-db/tally/engine/expr"
)

// windowApp has a query of every window kind, a join of two windows and windows inside a
// partition, so that large batches spread their events around the windows' rings.
const windowApp = `@app:name('Windows')
define stream Trades (symbol string, price double, qty long, ts long, venue string);
from Trades[qty > 1]#window.time(3 sec) select symbol, sum(qty) as q group by symbol having q > 20 insert all events into ByTime;
from Trades#window.length(50) select venue, max(price) as hi, count() as n group by venue insert all events into ByLength;
from Trades#window.externalTime(ts, 2 sec) select symbol, avg(price) as p group by symbol insert expired events into ByEventTime;
from Trades#window.lengthBatch(40) select venue, sum(qty) as q group by venue insert all events into ByLengthBatch;
from Trades#window.timeBatch(2 sec) select symbol, min(price) as lo group by symbol insert all events into ByTimeBatch;
from Trades#window.externalTimeBatch(ts, 1 sec, 0, 1500) select count() as n insert all events into ByEventBatch;
from Trades#window.length(3) as a join ByTime#window.time(100 millisec) as b on a.symbol == b.symbol and a.qty > 13
select a.symbol, a.venue, b.q insert into Joined;
partition with (venue of Trades)
begin
  from Trades#window.time(2 sec) select venue, symbol, qty insert expired events into VenueExpired;
end;
`

// batchWorkload is workload with batches of up to 120 events, as ingest requests bring them.
func batchWorkload(seed uint64, n int) []step {
	r := rand.New(rand.NewPCG(seed, 2))
	now := int64(1514782800000)
	var steps []step
	for i := range n {
		now += r.Int64N(700)
		s := step{index: uint64(i + 1), now: now}
		if r.IntN(7) == 0 {
			s.tick = true
		} else {
			for range 1 + r.IntN(120) {
				s.rows = append(s.rows, expr.Row{
					expr.String(fmt.Sprintf("s%d", r.IntN(6))),
					expr.Double(float64(r.IntN(10000)) / 7),
					expr.Long(r.Int64N(15)),
					expr.Long(now - r.Int64N(3000)),
					expr.String(fmt.Sprintf("v%d", r.IntN(3))),
				})
			}
		}
		steps = append(steps, s)
	}
	return steps
}

// TestDeterminism_WindowBatches: two engines fed the same large batches give the same
// outputs and encodings, and restoring mid-window at several cuts and continuing equals
// never stopping.
func TestDeterminism_WindowBatches(t *testing.T) {
	steps := batchWorkload(23, 60)
	apps := []string{windowApp}
	a, b := newEngineApps(t, apps), newEngineApps(t, apps)
	oa, ob := run(t, a, steps), run(t, b, steps)
	streams := map[string]bool{}
	for _, o := range oa {
		var idx, seq int
		var stream string
		fmt.Sscanf(o, "%d/%d %s", &idx, &seq, &stream)
		streams[stream] = true
	}
	for _, s := range []string{"ByTime", "ByLength", "ByEventTime", "ByLengthBatch", "ByTimeBatch", "ByEventBatch", "Joined", "VenueExpired"} {
		if !streams[s] {
			t.Errorf("the workload gave no output on %s: it tests nothing there", s)
		}
	}
	if fmt.Sprint(oa) != fmt.Sprint(ob) {
		t.Fatal("same calls gave different outputs")
	}
	want := encode(t, a)
	if !bytes.Equal(want, encode(t, b)) {
		t.Fatal("same calls gave different encodings")
	}
	checkRestoreAtCuts(t, func() *Engine { return newEngineApps(t, apps) }, steps, []int{9, 31, 59}, oa, want)
}
