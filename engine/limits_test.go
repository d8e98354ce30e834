package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/engine/expr"
	grouping "github.com/tally-db/tally/partition"
	"github.com/tally-db/tally/siddhiql"
)

// TestLongExpressionsDeployAndRun: an app whose expressions are as long as the parser
// allows (left-leaning chains about 5,000 operators deep, in a query's filter and select,
// an aggregation's filter and a store query) deploys, passes the partition check, applies
// and answers, with every recursive walk over them bounded by siddhiql.MaxExprNodes.
func TestLongExpressionsDeployAndRun(t *testing.T) {
	n := (siddhiql.MaxExprNodes - 10) / 2
	chain := "v" + strings.Repeat("+v", n-1)
	app := `@app:name('Long')
@distribution(strategy='partitioned', partitionKey='k')
define stream S (k string, v long, ts long);
from S[` + chain + ` > 0L] select k, ` + chain + ` as x insert into O;
define aggregation A from S[` + chain + ` > 1L] select k, sum(v) as total group by k aggregate by ts every sec, hour;
`
	parsed, err := siddhiql.Parse(app)
	if err != nil {
		t.Fatal(err)
	}
	if err := grouping.CheckApp(parsed, 4); err != nil {
		t.Fatalf("partition check: %v", err)
	}
	e := newEngine(t, "", app)
	out := mustApply(t, e, 1, 1514783400000, "S", expr.Row{expr.String("a"), expr.Long(2), expr.Long(1514783400000)})
	if len(out) != 1 || out[0].Row[1].I != int64(2*n) {
		t.Fatalf("outputs %+v, want x = %d", out, 2*n)
	}
	m := n - 100
	got := records(t, e, "Long", `from A within 0L, 9999999999999L per "hours" select k, total`+strings.Repeat("+total", m-1)+` as t`)
	if want := `{"records":[["a",` + itoa64(int64(2*m)) + `]]}`; got != want {
		t.Errorf("store query: %s, want %s", got, want)
	}
}

func itoa64(v int64) string { return expr.Long(v).String() }

// TestCheckLimits: event times outside years 0001-9999 are refused naming the event, the
// attribute and the aggregation; keys past the limit wrap agg.ErrTooManyKeys; neither
// changes anything, and Apply itself still takes both.
func TestCheckLimits(t *testing.T) {
	e := newEngine(t, "", tradeApp)
	ok := trade("a", 1, 1, 1514783400000)
	for _, ts := range []int64{agg.MinTime - 1, agg.MaxTime + 1, -9223372036854775808} {
		err := e.CheckLimits("TradeStream", []expr.Row{ok, trade("b", 1, 1, ts)}, 0)
		if !errors.Is(err, ErrBadEvent) || !strings.Contains(err.Error(), "event 1 of stream TradeStream: attribute timestamp (the event time of aggregation TradeAggregation)") {
			t.Errorf("ts %d: %v", ts, err)
		}
	}
	for _, ts := range []int64{agg.MinTime, agg.MaxTime} {
		if err := e.CheckLimits("TradeStream", []expr.Row{trade("b", 1, 1, ts)}, 0); err != nil {
			t.Errorf("ts %d: %v", ts, err)
		}
	}
	mustApply(t, e, 1, 1514783400000, "TradeStream", ok, trade("b", 1, 1, 1514783400000))
	if err := e.CheckLimits("TradeStream", []expr.Row{trade("a", 1, 1, 1514783400000), trade("c", 1, 1, 1514783400000)}, 2); !errors.Is(err, agg.ErrTooManyKeys) {
		t.Errorf("a third key: %v", err)
	}
	if err := e.CheckLimits("TradeStream", []expr.Row{trade("a", 1, 1, 1514783400000), trade("b", 1, 1, 1514783400000)}, 2); err != nil {
		t.Errorf("known keys: %v", err)
	}
	if err := e.CheckLimits("Nope", nil, 0); !errors.Is(err, ErrUnknownStream) {
		t.Errorf("unknown stream: %v", err)
	}
}
