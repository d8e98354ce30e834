package engine

import (
	"bytes"
	"fmt"
	"testing"
)

// rateApps exercise the state added for output rate limiting (and, below, triggers, app
// links and partitions): each case is a set of apps reading Trades.
var rateApps = map[string][]string{
	"ratelimit": {`@app:name('Rated')
define stream Trades (symbol string, price double, qty long, ts long, venue string);
from Trades select symbol, qty output last every 3 events insert into LastN;
from Trades select symbol, sum(qty) as q group by symbol output first every 4 events insert into FirstN;
from Trades#window.time(3 sec) select symbol, qty output all every 2 sec insert into AllT;
from Trades select venue, count() as n group by venue output last every 1 sec insert into LastT;
from Trades select venue, qty group by venue output first every 2 sec insert into FirstT;
from Trades#window.length(4) select symbol, max(price) as hi group by symbol output snapshot every 1500 millisec insert all events into Snap;
from Trades#window.lengthBatch(3) select venue, qty output snapshot every 2 sec insert all events into SnapBatch;
`},
	"trigger": {`@app:name('Triggered')
define stream Trades (symbol string, price double, qty long, ts long, venue string);
define trigger Started at 'start';
define trigger Tock at every 700 millisec;
define trigger Cron at '*/3 * * * * ?';
from Started select triggered_time insert into StartedAt;
from Tock select count() as n, triggered_time insert into Periodic;
from Cron#window.length(2) select sum(triggered_time) as s output last every 2 events insert into CronOut;
from Trades select symbol, qty insert into Echo;
`},
	"links": {`@app:name('Receiver')
define stream Trades (symbol string, price double, qty long, ts long, venue string);
@sink(type='inMemory', topic='BIG')
define stream Big (symbol string, qty long, venue string);
from Trades[qty > 5] select symbol, qty, venue insert into Big;
`, `@app:name('Summary')
@source(type='inMemory', topic='BIG')
define stream BigIn (symbol string, qty long, venue string);
from BigIn select venue, sum(qty) as total group by venue output last every 2 sec insert into VenueTotals;
from BigIn#window.length(3) select symbol, qty insert all events into Recent;
`, `@app:name('Alerts')
@source(type='inMemory', topic='BIG')
define stream BigAgain (symbol string, qty long, venue string);
define trigger Clock at every 3 sec;
from BigAgain select symbol, qty output first every 5 events insert into FirstBig;
from Clock select triggered_time insert into Clocked;
`},
	"partition": {`@app:name('Parted')
define stream Trades (symbol string, price double, qty long, ts long, venue string);
define stream Control (venue string);
partition with (symbol of Trades)
begin
  from Trades#window.length(3) select symbol, sum(qty) as q, venue insert all events into #Recent;
  from #Recent[q > 10] select symbol, q output last every 2 events insert into BigBySymbol;
  from Trades#window.time(2 sec) select symbol, count() as n insert expired events into Expired;
end;
@purge(enable='true', interval='2 sec', idle.period='3 sec')
partition with (price < 500 as 'cheap' or price >= 500 as 'dear' or qty > 10 as 'bulk' of Trades)
begin
  from Trades#window.lengthBatch(4) select venue, max(price) as hi group by venue insert into Bands;
end;
`},
}

func newEngineApps(t *testing.T, apps []string) *Engine {
	t.Helper()
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range apps {
		if _, err := e.Deploy(a); err != nil {
			t.Fatalf("deploy: %v", err)
		}
	}
	return e
}

// TestDeterminism_RateAndLinks: for each app set, two engines fed the same calls give the
// same outputs and encodings, and restoring at several cuts and continuing equals never
// stopping.
func TestDeterminism_RateAndLinks(t *testing.T) {
	for name, apps := range rateApps {
		t.Run(name, func(t *testing.T) {
			steps := workload(19, 300)
			a, b := newEngineApps(t, apps), newEngineApps(t, apps)
			oa, ob := run(t, a, steps), run(t, b, steps)
			if len(oa) == 0 {
				t.Fatal("the workload produced no outputs: it tests nothing")
			}
			if fmt.Sprint(oa) != fmt.Sprint(ob) {
				t.Fatal("same calls gave different outputs")
			}
			want := encode(t, a)
			if !bytes.Equal(want, encode(t, b)) {
				t.Fatal("same calls gave different encodings")
			}
			checkRestoreAtCuts(t, func() *Engine { return newEngineApps(t, apps) }, steps, []int{1, 77, 150, 299}, oa, want)
		})
	}
}

// checkRestoreAtCuts runs steps on a fresh engine (made by fresh) up to each cut, encodes
// and restores it into a new engine, runs the rest there, and checks that restoring
// re-encodes the same bytes and that the outputs and final state equal wantOut and
// wantState, those of an uninterrupted run.
func checkRestoreAtCuts(t *testing.T, fresh func() *Engine, steps []step, cuts []int, wantOut []string, wantState []byte) {
	t.Helper()
	for _, cut := range cuts {
		first := fresh()
		out := run(t, first, steps[:cut])
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
		out = append(out, run(t, second, steps[cut:])...)
		if fmt.Sprint(out) != fmt.Sprint(wantOut) {
			t.Errorf("cut %d: outputs after restore differ from an uninterrupted run", cut)
		}
		if !bytes.Equal(encode(t, second), wantState) {
			t.Errorf("cut %d: final state after restore differs from an uninterrupted run", cut)
		}
	}
}
