package engine

import (
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
)

// TestPartition_UnpartitionedStreamReachesEveryInstance: a stream the partition reads but
// does not partition goes to every existing instance, in creation order.
func TestPartition_UnpartitionedStreamReachesEveryInstance(t *testing.T) {
	e := newEngine(t, "", `@app:name('P')
define stream S (k string, v int);
define stream Reset (n int);
partition with (k of S)
begin
  from S select k, v insert into #Seen;
  from #Seen select k, sum(v) as total insert into Totals;
  from Reset select n insert into Resets;
end;`)
	rows := []expr.Row{{expr.String("b"), expr.Int(1)}, {expr.String("a"), expr.Int(2)}, {expr.String("b"), expr.Int(3)}}
	outs, err := e.Apply(1, 1000, "S", rows)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := streams(outs), `P/Totals{"k":"b","total":1} P/Totals{"k":"a","total":2} P/Totals{"k":"b","total":4}`; got != want {
		t.Errorf("totals %s\nwant %s", got, want)
	}
	outs, _ = e.Apply(2, 1001, "Reset", []expr.Row{{expr.Int(7)}})
	if got, want := streams(outs), `P/Resets{"n":7} P/Resets{"n":7}`; got != want {
		t.Errorf("broadcast %s\nwant %s", got, want)
	}
}

// TestPartition_TimeWindowsTickPerInstance: each instance's time window expires on ticks.
func TestPartition_TimeWindowsTickPerInstance(t *testing.T) {
	e := newEngine(t, "", `@app:name('P')
define stream S (k string, v int);
partition with (k of S)
begin
  from S#window.time(1 sec) select k, count() as n insert expired events into Gone;
end;`)
	if _, err := e.Apply(1, 1000, "S", []expr.Row{{expr.String("x"), expr.Int(1)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Apply(2, 1500, "S", []expr.Row{{expr.String("y"), expr.Int(1)}}); err != nil {
		t.Fatal(err)
	}
	if got, want := streams(e.Tick(3, 2600)), `P/Gone{"k":"x","n":0} P/Gone{"k":"y","n":0}`; got != want {
		t.Errorf("expiries %s\nwant %s", got, want)
	}
}

func TestPartition_DeployErrors(t *testing.T) {
	e, _ := New(Config{})
	for _, tt := range []struct{ app, want string }{
		{`@app:name('X')
define stream S (k string, v int);
partition with (k of S) begin from #Nope select k insert into O; end;`, "3:31: query reads inner stream #Nope, which no earlier query of the partition inserts into"},
		{`@app:name('X')
define stream S (k string, v int);
partition with (k of T) begin from S select k insert into O; end;`, "3:17: partition with ... of T: stream T is not defined"},
		{`@app:name('X')
define stream S (k string, v int);
partition with (k of S) begin
from S select k insert into #I;
from S select v insert into #I;
from #I select * insert into O; end;`, "5:1: query outputs (v int) into inner stream #I, which an earlier query defined as (k string)"},
		{`@app:name('X')
define stream S (k string, v int);
partition with (v + 1 as 'r' of S) begin from S select k insert into O; end;`, "3:17: range 'r' needs a bool condition, got int"},
		{`@app:name('X')
define stream S (k string, v int);
partition with (k of S) begin from S select k, v insert into S; end;`, "feed stream S back into itself"},
		{`@app:name('X')
define stream S (k string, v int);
@purge(enable='yes', idle.period='1 sec')
partition with (k of S) begin from S select k insert into O; end;`, "3:8: @purge enable must be 'true' or 'false', found 'yes'"},
		{`@app:name('X')
define stream S (k string, v int);
@purge(enable='true')
partition with (k of S) begin from S select k insert into O; end;`, "3:1: a partition's @purge needs enable='true|false' and idle.period='<time>'"},
		{`@app:name('X')
define stream S (k string, v int);
@purge(enable='true', idle.period='soon')
partition with (k of S) begin from S select k insert into O; end;`, "@purge idle.period 'soon' is not a positive duration"},
	} {
		if _, err := e.Deploy(tt.app); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s\nerr = %v\nwant %q", tt.app, err, tt.want)
		}
	}
}
