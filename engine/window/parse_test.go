package window

import (
	"slices"
	"testing"

	"github.com/tally-db/tally/siddhiql"
)

// TestQuery_ParsedApp runs SIDDHI.md §5's alert query from text, through siddhiql.Parse.
func TestQuery_ParsedApp(t *testing.T) {
	app, err := siddhiql.Parse(`
define stream S (symbol string, price double, q long, ts long);
from S[price > 0.0]#window.time(1 min)
select symbol, sum(q) as t
group by symbol
having t > 100
insert all events into Alerts;
`)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(app.Streams) != 1 || len(app.Queries) != 1 {
		t.Fatalf("parsed %d streams and %d queries", len(app.Streams), len(app.Queries))
	}
	q, err := Compile(app.Queries[0], app.Streams[0])
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	got := runAll(t, q, []step{at(0, ev("A", 60)), at(10000, ev("A", 50)), at(30000, ev("B", 200)),
		at(61000, ev("A", 10)), at(65000, ev("A", 45)), adv(200000)})
	want := []string{"C@10000 A 110", "C@30000 B 200", "C@65000 A 105"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q want %q", got, want)
	}
	attrs := q.OutputAttrs()
	if len(attrs) != 2 || attrs[1].Name != "t" || attrs[1].Type != siddhiql.TypeLong {
		t.Errorf("output attrs %+v", attrs)
	}
}
