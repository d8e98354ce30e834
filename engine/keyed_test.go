package engine

import (
	"fmt"
	"strings"
	"testing"
)

// keyedApp's table conditions pin the primary key, so they are looked up by key; the same
// app without @primaryKey scans. Upserts keep one row per key either way, so both must give
// the same outputs.
const keyedApp = `@app:name('Keyed')
define stream Trades (symbol string, price double, qty long, ts long, venue string);
@primaryKey('symbol', 'venue')
define table Pos (symbol string, venue string, qty long);
from Trades select symbol, venue, qty
  update or insert into Pos set Pos.qty = Pos.qty + qty on Pos.symbol == symbol and venue == Pos.venue;
from Trades[qty == 3] select symbol, venue delete Pos on Pos.symbol == symbol and Pos.venue == venue;
from Trades[qty == 5] select symbol, venue update Pos set Pos.qty = 0 on Pos.symbol == symbol and Pos.venue == venue and Pos.qty > 20;
from Trades#window.length(2) as t join Pos as p on p.symbol == t.symbol and p.venue == t.venue
  select t.symbol, t.venue, p.qty insert all events into Held;
from Trades[(Pos.symbol == symbol and Pos.venue == venue and Pos.qty > 30) in Pos] select symbol, qty insert into Big;
from Pos as p right outer join Trades#window.length(3) as t on t.venue == p.venue and p.symbol == t.symbol and p.qty < 40
  select t.symbol, p.qty, count() as n group by t.venue insert all events into Held2;
`

func TestKeyedLookupEqualsScan(t *testing.T) {
	steps := workload(21, 400)
	keyed := newEngine(t, "", keyedApp)
	scan := newEngine(t, "", strings.Replace(keyedApp, "@primaryKey('symbol', 'venue')", "", 1))
	ok, os := run(t, keyed, steps), run(t, scan, steps)
	for _, s := range []string{" Held ", " Big ", " Held2 "} {
		if !strings.Contains(fmt.Sprint(ok), s) {
			t.Fatalf("no %s outputs: the test tests nothing", s)
		}
	}
	if fmt.Sprint(ok) != fmt.Sprint(os) {
		t.Fatal("key lookups and scans gave different outputs")
	}
	a, _ := keyed.App("Keyed")
	pos, _ := a.Table("Pos")
	if pos.Len() == 0 {
		t.Fatal("the table is empty")
	}
	for _, q := range a.queries {
		if q.toTable != nil && q.toTable.keyed == nil {
			t.Errorf("query into %s does not use the key", q.def.Into)
		}
		if q.join != nil && q.join.keyed == nil {
			t.Error("the join does not use the key")
		}
	}
}
