package engine

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// tablesApp exercises every kind of table write, `in`, a stream–table join and a
// stream–stream outer join over the determinism workload's Trades stream.
const tablesApp = `@app:name('Tables')
define stream Trades (symbol string, price double, qty long, ts long, venue string);
@primaryKey('symbol') @index('qty')
define table Last (symbol string, price double, qty long);
define table Log (symbol string, venue string);
from Trades select symbol, price, qty
  update or insert into Last set Last.price = price, Last.qty = Last.qty + qty on Last.symbol == symbol;
from Trades[qty > 12] select symbol, venue insert into Log;
from Trades[qty < 2] select venue delete Log on Log.venue == venue;
from Trades[qty == 7] select symbol, qty update Last set Last.qty = 0 on Last.symbol == symbol;
from Trades#window.length(3) as t join Last as l on t.symbol == l.symbol
  select t.symbol, l.qty as total, t.price insert all events into Joined;
from Trades#window.time(2 sec) as a left outer join Trades#window.length(2) as b
  on a.venue == b.venue and a.symbol != b.symbol
  select a.symbol, b.symbol as other, count() as n group by a.symbol insert all events into Pairs;
from Trades[(Log.symbol == symbol) in Log] select symbol insert into Logged;
`

func TestDeterminism_Tables(t *testing.T) {
	steps := workload(5, 400)
	a, b := newEngine(t, "", tablesApp), newEngine(t, "", tablesApp)
	oa, ob := run(t, a, steps), run(t, b, steps)
	for _, s := range []string{" Joined ", " Pairs ", " Logged "} {
		if !strings.Contains(fmt.Sprint(oa), s) {
			t.Fatalf("the workload produced no %s outputs: it tests nothing", s)
		}
	}
	if fmt.Sprint(oa) != fmt.Sprint(ob) {
		t.Fatal("same calls gave different outputs")
	}
	if !bytes.Equal(encode(t, a), encode(t, b)) {
		t.Fatal("same calls gave different encodings")
	}
	app, _ := a.App("Tables")
	last, _ := app.Table("Last")
	log, _ := app.Table("Log")
	if last.Len() != 5 || log.Len() == 0 {
		t.Fatalf("tables hold %d and %d rows, want 5 (one per symbol) and some", last.Len(), log.Len())
	}
}

// TestRestoreContinues_Tables: tables and join windows survive encode and restore.
func TestRestoreContinues_Tables(t *testing.T) {
	steps := workload(13, 300)
	whole := newEngine(t, "", tablesApp)
	wantOut := run(t, whole, steps)
	wantState := encode(t, whole)
	checkRestoreAtCuts(t, func() *Engine { return newEngine(t, "", tablesApp) }, steps, []int{1, 77, 150, 299}, wantOut, wantState)
}
