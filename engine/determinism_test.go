package engine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tally-db/tally/engine/expr"
)

const mixedApp = `@app:name('Mixed')
define stream Trades (symbol string, price double, qty long, ts long, venue string);
define aggregation ByEvent from Trades
  select symbol, avg(price) as avgPrice, sum(qty) as total, min(price) as lo, max(price) as hi,
         distinctCount(venue) as venues, venue
  group by symbol
  aggregate by ts every sec ... year;
define aggregation ByArrival from Trades[qty > 2]
  select venue, count() as n, sum(price) as notional
  group by venue
  aggregate every sec, min, hour, day;
from Trades#window.time(2 sec) select symbol, sum(qty) as q group by symbol having q > 20 insert all events into Alerts;
from Trades#window.lengthBatch(5) select venue, count() as n group by venue insert into Batches;
from Alerts[q > 30] select symbol, q insert into BigAlerts;
`

// step is one engine call of a generated workload.
type step struct {
	index uint64
	now   int64
	tick  bool
	rows  []expr.Row
}

// workload makes a deterministic mix of batches (with late and out-of-order events) and ticks.
func workload(seed uint64, n int) []step {
	r := rand.New(rand.NewPCG(seed, 1))
	now := int64(1514782800000)
	var steps []step
	for i := range n {
		now += r.Int64N(1500)
		s := step{index: uint64(i + 1), now: now}
		if r.IntN(6) == 0 {
			s.tick = true
		} else {
			for range 1 + r.IntN(8) {
				ts := now - r.Int64N(5000)
				if r.IntN(20) == 0 {
					ts -= 7200000 // hours late
				}
				s.rows = append(s.rows, expr.Row{
					expr.String(fmt.Sprintf("s%d", r.IntN(5))),
					expr.Double(float64(r.IntN(10000)) / 7),
					expr.Long(r.Int64N(15)),
					expr.Long(ts),
					expr.String(fmt.Sprintf("v%d", r.IntN(3))),
				})
			}
		}
		steps = append(steps, s)
	}
	return steps
}

func run(t *testing.T, e *Engine, steps []step) []string {
	t.Helper()
	var outs []string
	for _, s := range steps {
		var o []Output
		if s.tick {
			o = e.Tick(s.index, s.now)
		} else {
			var err error
			if o, err = e.Apply(s.index, s.now, "Trades", s.rows); err != nil {
				t.Fatalf("step %d: %v", s.index, err)
			}
		}
		for _, x := range o {
			outs = append(outs, fmt.Sprintf("%d/%d %s %v %d %s", s.index, x.Seq, x.Stream, x.Expired, x.Time, expr.AppendJSONObject(nil, x.Attrs, x.Row)))
		}
	}
	return outs
}

func encode(t *testing.T, e *Engine) []byte {
	t.Helper()
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDeterminism: two engines fed the same calls encode to the same bytes.
func TestDeterminism(t *testing.T) {
	steps := workload(7, 400)
	a, b := newEngine(t, "Europe/Paris", mixedApp), newEngine(t, "Europe/Paris", mixedApp)
	oa, ob := run(t, a, steps), run(t, b, steps)
	if len(oa) == 0 {
		t.Fatal("the workload produced no outputs: it tests nothing")
	}
	if fmt.Sprint(oa) != fmt.Sprint(ob) {
		t.Fatal("same calls gave different outputs")
	}
	if !bytes.Equal(encode(t, a), encode(t, b)) {
		t.Fatal("same calls gave different encodings")
	}
}

// TestRestoreContinues: encode at several points, restore into a fresh engine, continue: the
// outputs, answers and final encoding equal those of an engine that never stopped.
func TestRestoreContinues(t *testing.T) {
	steps := workload(11, 300)
	whole := newEngine(t, "", mixedApp)
	wantOut := run(t, whole, steps)
	wantState := encode(t, whole)
	q := `from ByEvent within 0L, 9999999999999L per "hours" select AGG_TIMESTAMP, symbol, total, avgPrice, lo, hi, venues, venue`
	wantAnswer := records(t, whole, "Mixed", q)

	for _, cut := range []int{1, 50, 137, 299} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			first := newEngine(t, "", mixedApp)
			out := run(t, first, steps[:cut])
			snap := encode(t, first)
			second, err := New(Config{})
			if err != nil {
				t.Fatal(err)
			}
			if err := second.UnmarshalBinary(snap); err != nil {
				t.Fatalf("restore: %v", err)
			}
			if !bytes.Equal(encode(t, second), snap) {
				t.Fatal("restore then encode changed the bytes")
			}
			out = append(out, run(t, second, steps[cut:])...)
			if fmt.Sprint(out) != fmt.Sprint(wantOut) {
				t.Error("outputs after restore differ from an uninterrupted run")
			}
			if !bytes.Equal(encode(t, second), wantState) {
				t.Error("final state after restore differs from an uninterrupted run")
			}
			if got := records(t, second, "Mixed", q); got != wantAnswer {
				t.Errorf("answer after restore = %s, want %s", got, wantAnswer)
			}
		})
	}
}

func TestUnmarshalRejects(t *testing.T) {
	e := newEngine(t, "", mixedApp)
	run(t, e, workload(3, 50))
	snap := encode(t, e)
	other, _ := New(Config{AggTimeZone: "Asia/Tokyo"})
	if err := other.UnmarshalBinary(snap); err == nil {
		t.Error("restored a state made in another aggTimeZone")
	}
	fresh, _ := New(Config{})
	for _, n := range []int{0, 1, len(snap) / 2, len(snap) - 1} {
		if err := fresh.UnmarshalBinary(snap[:n]); err == nil {
			t.Errorf("restored a state cut to %d of %d bytes", n, len(snap))
		}
	}
	if len(fresh.Apps()) != 0 {
		t.Error("a failed restore left apps behind")
	}
	if err := fresh.UnmarshalBinary(append(snap[:len(snap):len(snap)], 0)); err == nil {
		t.Error("restored a state with trailing bytes")
	}
}
