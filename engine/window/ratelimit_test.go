package window

import (
	"slices"
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

func rateQuery(w *siddhiql.Window, sel []siddhiql.OutputAttr, gb []string, r siddhiql.OutputRate) *siddhiql.Query {
	q := query(w, siddhiql.CurrentEvents, sel, gb, nil)
	q.Rate = &r
	return q
}

func TestRateLimit_TimeFiresFromLaterStamps(t *testing.T) {
	// output last every 100 ms, anchored at the first stamped time (0).
	q := mustCompile(t, rateQuery(nil, symQ(), nil, siddhiql.OutputRate{Kind: siddhiql.RateLast, Millis: 100}))
	got := runAll(t, q, []step{
		adv(0),
		at(10, ev("A", 1)), at(20, ev("B", 2)),
		at(150, ev("C", 3)), // the period end at 100 fires before C enters: B
		adv(199),            // nothing due yet
		adv(200),            // C
		adv(5000),           // nothing held: no output, and no loop over 48 periods
		at(5050, ev("D", 4)),
		adv(5100), // D
	})
	want := []string{"C@20 B 2", "C@150 C 3", "C@5050 D 4"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRateLimit_BatchWindowChunksCountPerOutput(t *testing.T) {
	// lengthBatch(2) with sum and no group by gives one output per batch; output last
	// every 2 events lets every second batch's output through.
	q := mustCompile(t, rateQuery(win("lengthBatch", il(2)), symSum(), nil, siddhiql.OutputRate{Kind: siddhiql.RateLast, Events: 2}))
	got := runAll(t, q, []step{
		at(1, ev("A", 1)), at(2, ev("B", 2)), // batch 1: 3 (held)
		at(3, ev("C", 3)), at(4, ev("D", 4)), // batch 2: 7 (released)
		at(5, ev("E", 5)), at(6, ev("F", 6)), // batch 3: 11 (held)
	})
	want := []string{"C@4 D 7"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRateLimit_SnapshotCatchUpIsBounded(t *testing.T) {
	q := mustCompile(t, rateQuery(nil, symQ(), nil, siddhiql.OutputRate{Kind: siddhiql.RateSnapshot, Millis: 1}))
	n := 0
	q.Process(0, []expr.Row{ev("A", 1)}, func(Output) { n++ })
	q.Advance(1_000_000_000_000, func(o Output) {
		n++
		if o.Kind != Current || o.Row[0].S != "A" {
			t.Fatalf("snapshot output %s", fmtOut(o))
		}
	})
	if n != maxCatchUp {
		t.Errorf("a jump over 10^12 periods emitted %d snapshots, want the bound %d", n, maxCatchUp)
	}
	// The schedule continues from the last period end due: the next is one period later.
	n = 0
	q.Advance(1_000_000_000_001, func(Output) { n++ })
	if n != 1 {
		t.Errorf("next period emitted %d snapshots, want 1", n)
	}
}

func TestRateLimit_SnapshotWindowDropsExpired(t *testing.T) {
	// output snapshot every 10 ms over length(2): the snapshot is the window's content.
	q := mustCompile(t, rateQuery(win("length", il(2)), symQ(), nil, siddhiql.OutputRate{Kind: siddhiql.RateSnapshot, Millis: 10}))
	got := runAll(t, q, []step{
		at(0, ev("A", 1)), at(1, ev("B", 2)), at(2, ev("C", 3)),
		adv(10),
	})
	want := []string{"C@1 B 2", "C@2 C 3"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRateLimit_PeriodsAlignedToEpoch(t *testing.T) {
	// The query starts at 1234: its first period of 1000 ends at 2000, not 2234.
	q := mustCompile(t, rateQuery(nil, symQ(), []string{"symbol"}, siddhiql.OutputRate{Kind: siddhiql.RateLast, Millis: 1000}))
	got := runAll(t, q, []step{
		at(1234, ev("A", 1)), at(1500, ev("B", 2)), at(1900, ev("A", 3)),
		adv(1999), // nothing yet
		adv(2000), // A 3 and B 2, keys in first-seen order
		at(2100, ev("B", 4)),
		adv(2234), adv(2999), // still nothing
		adv(3000), // B 4
	})
	want := []string{"C@1900 A 3", "C@1500 B 2", "C@2100 B 4"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRateLimit_SnapshotRefusesExpiredOnly(t *testing.T) {
	q := query(win("length", il(2)), siddhiql.ExpiredEvents, symQ(), nil, nil)
	q.Rate = &siddhiql.OutputRate{Pos: siddhiql.Pos{Line: 3, Col: 9}, Kind: siddhiql.RateSnapshot, Millis: 10}
	_, err := Compile(q, stockStream)
	if err == nil || err.Error() != "siddhiql: 3:9: a query with 'output snapshot every' inserts its snapshots as current events: use 'insert into' or 'insert all events into', not 'insert expired events'" {
		t.Errorf("err = %v", err)
	}
}
