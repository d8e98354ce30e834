package engine

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

const tradeApp = `@app:name('TradeApp')
define stream TradeStream (symbol string, price double, quantity long, timestamp long);
@PartitionById
define aggregation TradeAggregation
  from TradeStream
  select symbol, avg(price) as avgPrice, sum(quantity) as total
  group by symbol
  aggregate by timestamp every sec ... year;
`

func newEngine(t *testing.T, zone, app string) *Engine {
	t.Helper()
	e, err := New(Config{AggTimeZone: zone})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Deploy(app); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	return e
}

func trade(symbol string, price float64, qty, ts int64) expr.Row {
	return expr.Row{expr.String(symbol), expr.Double(price), expr.Long(qty), expr.Long(ts)}
}

func mustApply(t *testing.T, e *Engine, index uint64, now int64, stream string, rows ...expr.Row) []Output {
	t.Helper()
	out, err := e.Apply(index, now, stream, rows)
	if err != nil {
		t.Fatalf("apply %d: %v", index, err)
	}
	return out
}

// records renders a query answer as the store API does.
func records(t *testing.T, e *Engine, app, q string) string {
	t.Helper()
	res, err := e.Query(app, q)
	if err != nil {
		t.Fatalf("query %q: %v", q, err)
	}
	return string(res.AppendJSON(nil, false))
}

// TestSeedActiveActive is the WSO2 active-active example: two shards, one hour, 30 + 40.
func TestSeedActiveActive(t *testing.T) {
	s1, s2 := newEngine(t, "", tradeApp), newEngine(t, "", tradeApp)
	mustApply(t, s1, 1, 1514783400000, "TradeStream", trade("wso2", 100, 10, 1514783400000))
	mustApply(t, s1, 2, 1514784000000, "TradeStream", trade("wso2", 100, 20, 1514784000000))
	mustApply(t, s2, 1, 1514783400000, "TradeStream", trade("wso2", 100, 10, 1514783400000))
	mustApply(t, s2, 2, 1514786399000, "TradeStream", trade("wso2", 100, 30, 1514786399000))

	q := `from TradeAggregation within 1514764800000L, 1514851200000L per "hours" select AGG_TIMESTAMP, symbol, total, avgPrice`
	plan, err := s1.Plan("TradeApp", q)
	if err != nil {
		t.Fatal(err)
	}
	res, err := plan.Run(s1.Rows("TradeApp", plan), s2.Rows("TradeApp", plan))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(res.AppendJSON(nil, false)), `{"records":[[1514782800000,"wso2",70,100.0]]}`; got != want {
		t.Fatalf("merged answer = %s, want %s", got, want)
	}
	// Each shard's HOURS table holds its own partial: 30 and 40.
	for i, c := range []struct {
		e    *Engine
		want int64
	}{{s1, 30}, {s2, 40}} {
		st, _ := c.e.apps["TradeApp"].Aggregation("TradeAggregation")
		var sum int64
		for _, r := range st.Rows(siddhiql.Hours) {
			sum += r.Bases[st.Def().Outputs[2].Index].I
		}
		if sum != c.want {
			t.Errorf("shard %d HOURS total = %d, want %d", i+1, sum, c.want)
		}
	}
	// A single shard answers only its own part.
	if got, want := records(t, s2, "TradeApp", q), `{"records":[[1514782800000,"wso2",40,100.0]]}`; got != want {
		t.Errorf("shard 2 alone = %s, want %s", got, want)
	}
}

// TestOutOfOrderEvents: a late event is never dropped; it adds a row in the current arrival
// bucket for its own (old) event bucket.
func TestOutOfOrderEvents(t *testing.T) {
	e := newEngine(t, "", tradeApp)
	const h = 3600000
	base := int64(1514782800000) // 05:00Z
	mustApply(t, e, 1, base+10, "TradeStream", trade("a", 1, 5, base+10))
	// Three hours later, an event from the first hour arrives.
	mustApply(t, e, 2, base+3*h, "TradeStream", trade("a", 3, 7, base+20))
	st, _ := e.apps["TradeApp"].Aggregation("TradeAggregation")
	rows := st.Rows(siddhiql.Hours)
	if len(rows) != 2 {
		t.Fatalf("HOURS rows = %d, want 2 (one per arrival bucket)", len(rows))
	}
	if rows[1].AggTimestamp != base+3*h || rows[1].EventTimestamp != base {
		t.Errorf("late row = (arrival %d, event %d), want (%d, %d)", rows[1].AggTimestamp, rows[1].EventTimestamp, base+3*h, base)
	}
	q := `from TradeAggregation within 0L, 9999999999999L per "hours" select AGG_TIMESTAMP, symbol, total, avgPrice`
	if got, want := records(t, e, "TradeApp", q), `{"records":[[1514782800000,"a",12,2.0]]}`; got != want {
		t.Errorf("answer = %s, want %s", got, want)
	}
	// The first arrival hour is closed; the second is open.
	if !st.Closed(siddhiql.Hours, rows[0]) || st.Closed(siddhiql.Hours, rows[1]) {
		t.Errorf("closed flags = %v, %v; want true, false", st.Closed(siddhiql.Hours, rows[0]), st.Closed(siddhiql.Hours, rows[1]))
	}
}

const arrivalApp = `@app:name('Api')
define stream Req (user string, app string, latency int, region string);
define aggregation ReqAgg
  from Req[latency >= 0]
  select user, count() as n, sum(latency) as total, avg(latency) as avgLatency,
         min(latency) as fastest, max(latency) as slowest, distinctCount(app) as apps, region
  group by user
  aggregate every sec, min, hour;
`

func req(user, app string, latency int32, region string) expr.Row {
	return expr.Row{expr.String(user), expr.String(app), expr.Int(latency), expr.String(region)}
}

// TestArrivalTimeFunctions covers arrival-time mode and every function: count, sum of an int
// (a long), avg (a double, never truncated), min/max (the input type), distinctCount and a
// latest-value column, plus the aggregation's filter.
func TestArrivalTimeFunctions(t *testing.T) {
	e := newEngine(t, "", arrivalApp)
	t0 := int64(1700000000000) // 22:13:20Z
	mustApply(t, e, 1, t0, "Req", req("u", "a", 10, "eu"), req("u", "b", 3, "us"), req("v", "a", 1, "eu"))
	mustApply(t, e, 2, t0+500, "Req", req("u", "a", 4, "ap"), req("u", "x", -1, "zz"))
	mustApply(t, e, 3, t0+1500, "Req", req("u", "c", 8, "sa"))

	q := `from ReqAgg within 0L, 9999999999999L per "seconds" select AGG_TIMESTAMP, user, n, total, avgLatency, fastest, slowest, apps, region`
	want := `{"records":[[1700000000000,"u",3,17,5.666666666666667,3,10,2,"ap"],[1700000000000,"v",1,1,1.0,1,1,1,"eu"],[1700000001000,"u",1,8,8.0,8,8,1,"sa"]]}`
	if got := records(t, e, "Api", q); got != want {
		t.Errorf("seconds:\n got %s\nwant %s", got, want)
	}
	q = `from ReqAgg within 0L, 9999999999999L per "minutes" select user, n, total, avgLatency, apps, region order by user`
	want = `{"records":[["u",4,25,6.25,3,"sa"],["v",1,1,1.0,1,"eu"]]}`
	if got := records(t, e, "Api", q); got != want {
		t.Errorf("minutes:\n got %s\nwant %s", got, want)
	}
	res, err := e.Query("Api", `from ReqAgg within 0L, 9999999999999L per "hours" select *`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range res.Columns {
		names = append(names, c.Name+":"+c.Type.String())
	}
	if got, want := strings.Join(names, " "), "AGG_TIMESTAMP:long user:string n:long total:long avgLatency:double fastest:int slowest:int apps:long region:string"; got != want {
		t.Errorf("select * columns = %s, want %s", got, want)
	}
	if _, err := e.Query("Api", `from ReqAgg within 0L, 1L per "days" select *`); err == nil || !strings.Contains(err.Error(), "ReqAgg does not contain DAYS duration") {
		t.Errorf("per days on a sec/min/hour aggregation: err = %v", err)
	}
}

// TestLatestValueInEventTime: the latest column follows the greatest event time, ties to the
// later arrival, across arrival buckets and shards.
func TestLatestValueInEventTime(t *testing.T) {
	app := `@app:name('L')
define stream S (k string, v long, note string, ts long);
define aggregation A from S select k, sum(v) as total, note group by k aggregate by ts every sec ... hour;`
	e := newEngine(t, "", app)
	t0 := int64(1514782800000)
	row := func(v int64, note string, ts int64) expr.Row {
		return expr.Row{expr.String("k"), expr.Long(v), expr.String(note), expr.Long(ts)}
	}
	mustApply(t, e, 1, t0, "S", row(1, "newest", t0+5000), row(1, "older", t0+1000))
	mustApply(t, e, 2, t0+7200000, "S", row(1, "tie-later-arrival", t0+5000))
	q := `from A within 0L, 9999999999999L per "hours" select k, total, note`
	if got, want := records(t, e, "L", q), `{"records":[["k",3,"tie-later-arrival"]]}`; got != want {
		t.Errorf("answer = %s, want %s", got, want)
	}
}

// TestTimeZone: day buckets follow aggTimeZone; event-time strings with offsets are read.
func TestTimeZone(t *testing.T) {
	app := `@app:name('Z')
define stream S (k string, v long, ts string);
define aggregation A from S select k, sum(v) as total group by k aggregate by ts every hour, day, month;`
	e := newEngine(t, "Asia/Kolkata", app)
	row := func(v int64, ts string) expr.Row { return expr.Row{expr.String("k"), expr.Long(v), expr.String(ts)} }
	// 2018-01-01 00:10 IST and 23:50 IST are one Kolkata day; 2018-01-02 00:10 IST the next.
	mustApply(t, e, 1, 1514800000000, "S", row(1, "2017-12-31 18:40:00"), row(2, "2018-01-01 23:50:00 +05:30"), row(4, "2018-01-02 00:10:00 +05:30"))
	q := `from A within "2018-01-** **:**:** +05:30" per "days" select AGG_TIMESTAMP, total`
	// Day starts: 2017-12-31T18:30Z and 2018-01-01T18:30Z.
	if got, want := records(t, e, "Z", q), `{"records":[[1514745000000,3],[1514831400000,4]]}`; got != want {
		t.Errorf("days = %s, want %s", got, want)
	}
	q = `from A within "2018-01-01 **:**:** +05:30" per "hours" select AGG_TIMESTAMP, total`
	// 00:10 IST is in the hour starting 2017-12-31T18:30Z; 23:50 IST in 2018-01-01T17:30Z.
	if got, want := records(t, e, "Z", q), `{"records":[[1514745000000,1],[1514827800000,2]]}`; got != want {
		t.Errorf("hours = %s, want %s", got, want)
	}
	if _, err := e.Apply(2, 1514800000001, "S", []expr.Row{row(1, "2018-01-02 00:10:00"), row(1, "Jan 2")}); !errors.Is(err, ErrBadEvent) || !strings.Contains(err.Error(), "event 1") {
		t.Errorf("bad time string: err = %v, want ErrBadEvent naming event 1", err)
	}
	if got, want := records(t, e, "Z", `from A within 0L, 9999999999999L per "months" select total`), `{"records":[[7]]}`; got != want {
		t.Errorf("a refused batch changed the state: %s, want %s", got, want)
	}
}

// TestStoreQueryClauses covers within (bounds are bucket starts, start-inclusive,
// end-exclusive), on, group by, having, order by, limit and offset.
func TestStoreQueryClauses(t *testing.T) {
	e := newEngine(t, "", tradeApp)
	t0 := int64(1514782800000) // an hour start
	for i, s := range []string{"a", "b", "c", "a", "b", "a"} {
		ts := t0 + int64(i)*1800000 // every half hour
		mustApply(t, e, uint64(i+1), ts, "TradeStream", trade(s, float64(10*(i+1)), int64(i+1), ts))
	}
	cases := []struct{ q, want string }{
		{`from TradeAggregation within 1514782800000L, 1514786400000L per "hours" select symbol, total order by symbol`,
			`{"records":[["a",1],["b",2]]}`},
		// within on the bucket start: an end inside the second hour still takes the whole first hour only.
		{`from TradeAggregation within 1514782800000L, 1514786399999L per "hours" select symbol, total order by symbol`,
			`{"records":[["a",1],["b",2]]}`},
		{`from TradeAggregation within 1514782800001L, 1514793600000L per "hours" select AGG_TIMESTAMP, symbol, total order by AGG_TIMESTAMP, symbol`,
			`{"records":[[1514786400000,"a",4],[1514786400000,"c",3],[1514790000000,"a",6],[1514790000000,"b",5]]}`},
		{`from TradeAggregation on symbol == "a" within 0L, 9999999999999L per "hours" select AGG_TIMESTAMP, total`,
			`{"records":[[1514782800000,1],[1514786400000,4],[1514790000000,6]]}`},
		{`from TradeAggregation within 0L, 9999999999999L per "days" select symbol, sum(total) as t, count() as n group by symbol having t > 4 order by t desc`,
			`{"records":[["a",11,1],["b",7,1]]}`},
		{`from TradeAggregation within 0L, 9999999999999L per "hours" select symbol, total order by total desc limit 2 offset 1`,
			`{"records":[["b",5],["a",4]]}`},
		{`from TradeAggregation within "2018-01-01 05:**:**" per "hours" select symbol, avgPrice order by symbol`,
			`{"records":[["a",10.0],["b",20.0]]}`},
		{`from TradeAggregation within 0L, 1L per "hours" select symbol, total`, `{"records":[]}`},
	}
	for _, c := range cases {
		if got := records(t, e, "TradeApp", c.q); got != c.want {
			t.Errorf("%s\n got %s\nwant %s", c.q, got, c.want)
		}
	}
	bad := []struct{ q, msg string }{
		{`from TradeAggregation within 5L, 5L per "hours" select *`, "must be before end"},
		{`from TradeAggregation within 0L, 5L per "weeks" select *`, "unknown per duration"},
		{`from Nope within 0L, 5L per "hours" select *`, "has no aggregation Nope"},
		{`from TradeAggregation within 0L, 5L per "hours" select nope`, `no attribute "nope"`},
		{`from TradeAggregation within 0L, 5L per "hours" select symbol order by nope`, `order by "nope": neither a selected column nor an attribute`},
		{`from TradeAggregation within 0L per "hours" select *`, "time pattern"},
	}
	for _, c := range bad {
		if _, err := e.Query("TradeApp", c.q); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want one containing %q", c.q, err, c.msg)
		}
	}
	if _, err := e.Query("Nope", `from TradeAggregation within 0L, 5L per "hours"`); !errors.Is(err, ErrUnknownApp) {
		t.Errorf("unknown app: err = %v", err)
	}
}

// TestFlushLifecycle: rows are handed out while changed, closed buckets drop once flushed,
// open ones stay.
func TestFlushLifecycle(t *testing.T) {
	e := newEngine(t, "", tradeApp)
	t0 := int64(1514782800000)
	mustApply(t, e, 1, t0, "TradeStream", trade("a", 1, 1, t0))
	mustApply(t, e, 2, t0+1500, "TradeStream", trade("a", 1, 1, t0+1500))
	st, _ := e.apps["TradeApp"].Aggregation("TradeAggregation")
	changed := st.Changed(0)
	if len(changed[siddhiql.Seconds]) != 2 || len(changed[siddhiql.Hours]) != 1 || len(changed[siddhiql.Years]) != 1 {
		t.Fatalf("changed since 0: sec %d, hours %d, years %d rows; want 2, 1, 1", len(changed[siddhiql.Seconds]), len(changed[siddhiql.Hours]), len(changed[siddhiql.Years]))
	}
	if got := len(st.Changed(2)[siddhiql.Seconds]); got != 0 {
		t.Errorf("changed since 2 = %d rows, want 0", got)
	}
	// Flushed through 1: only the first second's row is closed and that old.
	if n := e.DropFlushed(1); n != 1 {
		t.Errorf("DropFlushed(1) dropped %d rows, want 1", n)
	}
	// Flushed through 2: the second second is still open, and the minute..year rows too.
	if n := e.DropFlushed(2); n != 0 {
		t.Errorf("DropFlushed(2) dropped %d rows, want 0", n)
	}
	e.Tick(3, t0+2000)
	if n := e.DropFlushed(2); n != 1 {
		t.Errorf("after the tick DropFlushed(2) dropped %d rows, want 1", n)
	}
	if st.Len() != 5 {
		t.Errorf("rows held = %d, want 5 (the open min..year rows)", st.Len())
	}
}

func TestPurge(t *testing.T) {
	app := `@app:name('P')
define stream S (k string, v long);
@purge(enable='true', interval='10 sec', @retentionPeriod(sec='120 sec', min='120 min'))
define aggregation A from S select k, sum(v) as total group by k aggregate every sec, min, hour;`
	e := newEngine(t, "", app)
	t0 := int64(1514782800000)
	mustApply(t, e, 1, t0, "S", expr.Row{expr.String("k"), expr.Long(1)})
	mustApply(t, e, 2, t0+200000, "S", expr.Row{expr.String("k"), expr.Long(1)})
	st, _ := e.apps["P"].Aggregation("A")
	got := st.Purge(t0 + 200000)
	if got[siddhiql.Seconds] != 1 || got[siddhiql.Minutes] != 0 || got[siddhiql.Hours] != 0 {
		t.Errorf("purged %v, want 1 second row only", got)
	}
}

func TestApplyErrorsChangeNothing(t *testing.T) {
	e := newEngine(t, "", tradeApp)
	before, _ := e.MarshalBinary()
	if _, err := e.Apply(1, 5, "Nope", nil); !errors.Is(err, ErrUnknownStream) {
		t.Errorf("unknown stream: err = %v", err)
	}
	bad := expr.Row{expr.String("a"), expr.String("not a price"), expr.Long(1), expr.Long(1)}
	if _, err := e.Apply(1, 5, "TradeStream", []expr.Row{trade("a", 1, 1, 1), bad}); !errors.Is(err, ErrBadEvent) || !strings.Contains(err.Error(), "event 1") {
		t.Errorf("wrong type: err = %v", err)
	}
	if _, err := e.Apply(1, 5, "TradeStream", []expr.Row{{expr.String("a")}}); !errors.Is(err, ErrBadEvent) {
		t.Errorf("short row: err = %v", err)
	}
	after, _ := e.MarshalBinary()
	if !bytes.Equal(before, after) {
		t.Error("a refused batch changed the engine state")
	}
}

func TestDeployErrors(t *testing.T) {
	e := newEngine(t, "", tradeApp)
	cases := []struct{ app, msg string }{
		{`define stream S (a int);`, "needs a name"},
		{`@app:name('X') define stream TradeStream (a int);`, "already defined by app TradeApp"}, // a plain input (scope.go)
		{`@app:name('X') define stream S (a int); define aggregation A from T select a group by a aggregate every sec;`, "stream T, which is not defined"},
		{`@app:name('X') define stream S (a string, ts double); define aggregation A from S select a aggregate by ts every sec;`, "must be a long"},
		{`@app:name('X') define stream S (a string); define aggregation A from S select sum(a) as s aggregate every sec;`, "needs a numeric attribute"},
		{`@app:name('X') define stream S (a int); from S select a insert into T; from T select a insert into S;`, "back into itself"},
		{`@app:name('X') define stream S (a int); define stream O (a string); from S select a insert into O;`, "is int but attribute a of stream O is string"},
	}
	for _, c := range cases {
		if _, err := e.Deploy(c.app); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("deploy %q: err = %v, want one containing %q", c.app, err, c.msg)
		}
	}
	if len(e.Apps()) != 1 {
		t.Errorf("failed deploys left %d apps, want 1", len(e.Apps()))
	}
}

// TestDeployIdenticalTextKeepsState: deploying the same text again (a retried deploy) keeps
// the state; a changed text replaces the app and drops it.
func TestDeployIdenticalTextKeepsState(t *testing.T) {
	e := newEngine(t, "", tradeApp)
	mustApply(t, e, 1, 1514783400000, "TradeStream", trade("a", 1, 5, 1514783400000))
	q := `from TradeAggregation within 0L, 9999999999999L per "years" select symbol, total`
	if _, err := e.Deploy(tradeApp); err != nil {
		t.Fatal(err)
	}
	if got := records(t, e, "TradeApp", q); got != `{"records":[["a",5]]}` {
		t.Errorf("after redeploying the same text: %s", got)
	}
	if _, err := e.Deploy(tradeApp + "\n-- changed\n"); err != nil {
		t.Fatal(err)
	}
	if got := records(t, e, "TradeApp", q); got != `{"records":[]}` {
		t.Errorf("after deploying a changed text: %s, want the state dropped", got)
	}
}
