package partition

import (
	"strings"
	"testing"

	"github.com/tally-db/tally/siddhiql"
)

// A join with an aggregation answers from the rows each group holds, so with several groups
// it is refused with the reason, whichever side the aggregation is on and whatever feeds the
// stream side (a trigger fires in every group).
func TestCheckApp_AggregationJoin(t *testing.T) {
	const head = `@app:name('A')
@distribution(strategy='partitioned', partitionKey='k')
define stream S (k string, v long);
define trigger Tick at every 1 min;
define aggregation Agg from S select k, sum(v) as total group by k aggregate every sec...min;
`
	for _, c := range []struct{ name, q, err string }{
		{"stream", "from S as s join Agg as a on s.k == a.k within 0L, 60000L per 'seconds' select a.total insert into O;", "query 1 joins S with aggregation Agg"},
		{"trigger", "from Tick join Agg within 0L, 60000L per 'minutes' select Agg.total insert into O;", "query 1 joins Tick with aggregation Agg"},
		{"aggregation left", "from Agg join S within 0L, 60000L per 'minutes' select Agg.total insert into O;", "query 1 joins S with aggregation Agg"},
	} {
		t.Run(c.name, func(t *testing.T) {
			app, err := siddhiql.Parse(head + c.q)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckApp(app, 1); err != nil {
				t.Errorf("one group: %v", err)
			}
			err = CheckApp(app, 2)
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "6:1") || !strings.Contains(err.Error(), "its own part of the aggregation") {
				t.Errorf("two groups: error %v, want %q at 6:1 with the reason", err, c.err)
			}
		})
	}
}

// A read-only aggregation aggregates nothing, whatever routes its input stream.
func TestCheckApp_ReadOnlyAggregationOverBroadcast(t *testing.T) {
	const app = `@app:name('A')
@distribution(strategy='broadcast')
define stream S (k string, v long);
@persistedAggregation(is.read.only='true')
define aggregation Agg from S select k, sum(v) as total group by k aggregate every sec...min;
`
	p, err := siddhiql.Parse(app)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckApp(p, 3); err != nil {
		t.Errorf("read-only aggregation over a broadcast stream: %v", err)
	}
	p, err = siddhiql.Parse(strings.Replace(app, "@persistedAggregation(is.read.only='true')\n", "", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckApp(p, 3); err == nil || !strings.Contains(err.Error(), "broadcast") {
		t.Errorf("an aggregation over a broadcast stream: error %v, want the broadcast refusal", err)
	}
}
