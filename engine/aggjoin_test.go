package engine

import (
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// aggJoinApp counts hits per key in an arrival-time aggregation that a stream joins per the
// granularity it names, and keeps a second aggregation no join reads.
const aggJoinApp = `@app:name('AJ')
define stream Hits (k string, n long);
define stream Ask (k string, since long, until long, per string);
define aggregation HitAgg from Hits select k, sum(n) as total, count() as events group by k aggregate every sec...hour;
define aggregation Unjoined from Hits select k, sum(n) as total group by k aggregate every sec...hour;
from Ask as q join HitAgg as h on q.k == h.k
within q.since, q.until per q.per
select AGG_TIMESTAMP as bucket, h.k, total, events
insert into Answers;
`

func hit(k string, n int64) expr.Row { return expr.Row{expr.String(k), expr.Long(n)} }

func ask(k string, since, until int64, per string) expr.Row {
	return expr.Row{expr.String(k), expr.Long(since), expr.Long(until), expr.String(per)}
}

func outJSON(outs []Output, stream string) string {
	var b []string
	for _, o := range outs {
		if o.Stream == stream {
			s := string(expr.AppendJSONObject(nil, o.Attrs, o.Row))
			if o.Expired {
				s = "expired " + s
			}
			b = append(b, s)
		}
	}
	return strings.Join(b, " ")
}

// The join sees every row in memory, merged per bucket and group, including the open bucket;
// an event whose within or per does not resolve finds nothing.
func TestAggJoin_FindsRowsPerBucket(t *testing.T) {
	e := newEngine(t, "", aggJoinApp)
	const t0 = int64(1514764800000) // 2018-01-01 00:00 UTC
	mustApply(t, e, 1, t0+1000, "Hits", hit("a", 1), hit("b", 10))
	mustApply(t, e, 2, t0+1500, "Hits", hit("a", 2))
	mustApply(t, e, 3, t0+61000, "Hits", hit("a", 4))
	outs := mustApply(t, e, 4, t0+62000, "Ask", ask("a", t0, t0+120000, "minutes"))
	want := `{"bucket":1514764800000,"k":"a","total":3,"events":2} {"bucket":1514764860000,"k":"a","total":4,"events":1}`
	if got := outJSON(outs, "Answers"); got != want {
		t.Errorf("minutes:\n got %s\nwant %s", got, want)
	}
	outs = mustApply(t, e, 5, t0+62000, "Ask", ask("b", t0, t0+3600000, "hours"))
	if got, want := outJSON(outs, "Answers"), `{"bucket":1514764800000,"k":"b","total":10,"events":1}`; got != want {
		t.Errorf("hours: got %s, want %s", got, want)
	}
	for _, bad := range []expr.Row{ask("a", t0+120000, t0, "minutes"), ask("a", t0, t0+120000, "days"), ask("a", t0, t0+120000, "fortnights")} {
		if outs := mustApply(t, e, 6, t0+62000, "Ask", bad); len(outs) != 0 {
			t.Errorf("bounds %v: got %s, want nothing", bad, outJSON(outs, "Answers"))
		}
	}
}

// A flush drops the closed rows of an aggregation no join reads; one a join reads keeps
// agg.JoinRetention closed buckets of each granularity the join may read, and the join still
// sees them after the flush.
func TestAggJoin_RetentionAfterFlush(t *testing.T) {
	e := newEngine(t, "", aggJoinApp)
	a, _ := e.App("AJ")
	joined, _ := a.Aggregation("HitAgg")
	other, _ := a.Aggregation("Unjoined")
	if got := joined.Retained(); len(got) != 3 {
		t.Fatalf("HitAgg keeps %v for joins, want every granularity (per is not a constant)", got)
	}
	if got := other.Retained(); got != nil {
		t.Fatalf("Unjoined keeps %v for joins, want nothing", got)
	}
	const t0 = int64(1514764800000)
	idx := uint64(0)
	// One event a minute for 200 minutes.
	for m := range int64(200) {
		idx++
		mustApply(t, e, idx, t0+m*60000, "Hits", hit("a", 1))
	}
	now := t0 + 199*60000
	e.DropFlushed(idx)
	// Unjoined keeps only its open buckets: one row per granularity.
	if got := other.Len(); got != 3 {
		t.Errorf("Unjoined holds %d rows after the flush, want 3 (the open second, minute and hour)", got)
	}
	// HitAgg keeps the open minute and the 120 before it; for seconds the open one and the
	// 120 before it (events 60 and 120 seconds back); and all four hours.
	secs := len(joined.Rows(siddhiql.Seconds))
	mins := len(joined.Rows(siddhiql.Minutes))
	hours := len(joined.Rows(siddhiql.Hours))
	if secs != 3 || mins != agg.JoinRetention+1 || hours != 4 {
		t.Errorf("HitAgg holds %d seconds, %d minutes, %d hours after the flush, want 3, %d, 4", secs, mins, hours, agg.JoinRetention+1)
	}
	idx++
	outs := mustApply(t, e, idx, now, "Ask", ask("a", now-120*60000, now+1, "minutes"))
	if n := strings.Count(outJSON(outs, "Answers"), `"total":1`); n != 121 {
		t.Errorf("the join found %d minute rows after the flush, want 121", n)
	}
	// The hours rows are still there for a join 200 minutes back.
	idx++
	outs = mustApply(t, e, idx, now, "Ask", ask("a", t0, now+1, "hours"))
	if got, want := outJSON(outs, "Answers"), `{"bucket":1514764800000,"k":"a","total":60,"events":60} {"bucket":1514768400000,"k":"a","total":60,"events":60} {"bucket":1514772000000,"k":"a","total":60,"events":60} {"bucket":1514775600000,"k":"a","total":20,"events":20}`; got != want {
		t.Errorf("hours after the flush:\n got %s\nwant %s", got, want)
	}
	// Time moves on: a tick's flush drops what fell out of the retention.
	idx++
	e.Tick(idx, now+30*60000)
	e.DropFlushed(idx)
	if mins := len(joined.Rows(siddhiql.Minutes)); mins != agg.JoinRetention-30+1 {
		t.Errorf("HitAgg holds %d minutes 30 minutes later, want %d", mins, agg.JoinRetention-30+1)
	}
}

// A constant per keeps only that granularity's closed rows.
func TestAggJoin_RetentionOnlyForConstantPer(t *testing.T) {
	app := strings.Replace(aggJoinApp, "per q.per", `per "minutes"`, 1)
	e := newEngine(t, "", app)
	a, _ := e.App("AJ")
	st, _ := a.Aggregation("HitAgg")
	if got := st.Retained(); len(got) != 1 || got[0] != siddhiql.Minutes {
		t.Fatalf("HitAgg keeps %v for joins, want [minutes]", got)
	}
	// Undeploying the joining app's query (a new text without it) drops the retention.
	e2 := newEngine(t, "", strings.Split(aggJoinApp, "from Ask")[0])
	a2, _ := e2.App("AJ")
	st2, _ := a2.Aggregation("HitAgg")
	if got := st2.Retained(); got != nil {
		t.Errorf("without a join HitAgg keeps %v", got)
	}
}

func TestAggJoin_DeployErrors(t *testing.T) {
	const head = `@app:name('E')
define stream S (k string, since long, until long, per string, d double);
define aggregation A from S select k, sum(d) as total group by k aggregate every sec...min;
define table T (k string);
`
	for _, c := range []struct{ name, q, pos, err string }{
		{"no within", `from S join A on S.k == A.k select A.total insert into O;`, "5:13", "needs 'within start, end per"},
		{"within on a table", `from S join T on S.k == T.k within 0L, 1L per "seconds" select T.k insert into O;`, "5:36", "belongs to joins with an aggregation"},
		{"within reads the aggregation", `from S join A within A.total, S.until per "seconds" select A.total insert into O;`, "5:22", "within and per read the stream event: total is an attribute of aggregation A"},
		{"within type", `from S join A within S.d, S.until per "seconds" select A.total insert into O;`, "5:22", "must be a long (epoch ms) or a time string, got double"},
		{"per not kept", `from S join A within S.since, S.until per "hours" select A.total insert into O;`, "5:43", "aggregation A does not keep hours"},
		{"per not a string", `from S join A within S.since, S.until per 5 select A.total insert into O;`, "5:43", "per of the join with aggregation A must be a string"},
		{"bad constant", `from S join A within "2017-06-01", "2017-06-02" per "seconds" select A.total insert into O;`, "5:22", "within of the join with aggregation A"},
		{"span", `from S join A within "2017-06-01 00:00:00", "2017-06-01 00:03:00" per "seconds" select A.total insert into O;`, "5:22", "more than the 120 seconds buckets (about 2 minutes) of aggregation A"},
		{"span per expression", `from S join A within 0L, 999999999999L per S.per select A.total insert into O;`, "5:22", "more than the 120 minutes buckets"},
		{"window", `from S join A#window.length(2) within S.since, S.until per "seconds" select A.total insert into O;`, "5:22", "is an aggregation: it cannot have a window"},
		{"aggregation triggers", `from S join A unidirectional within S.since, S.until per "seconds" select A.total insert into O;`, "5:13", "never triggers the join"},
		{"outer on the aggregation", `from S right outer join A within S.since, S.until per "seconds" select A.total insert into O;`, "5:8", "its rows cannot come out unmatched"},
		{"full outer", `from S full outer join A within S.since, S.until per "seconds" select A.total insert into O;`, "5:8", "its rows cannot come out unmatched"},
		{"order by unselected", `from S join A within S.since, S.until per "seconds" select A.total order by k insert into O;`, "5:77", "order by k: not an attribute the query selects"},
		{"order by on a table join", `from S join T on S.k == T.k select T.k order by k insert into O;`, "5:40", "joins with an aggregation only"},
		{"limit", `from S join A within S.since, S.until per "seconds" select A.total limit -1 insert into O;`, "5:74", "limit must be a non-negative integer constant"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e, err := New(Config{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.Deploy(head + c.q)
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), c.pos) {
				t.Errorf("error %v, want %q at %s", err, c.err, c.pos)
			}
			if len(e.Apps()) != 0 {
				t.Error("a refused deploy left an app")
			}
		})
	}
}

// order by, offset and limit cut each event's joined rows; a left outer join emits an event
// that finds nothing with nulls.
func TestAggJoin_OrderLimitOuter(t *testing.T) {
	app := `@app:name('O')
define stream Hits (k string, n long);
define stream Ask (k string);
define aggregation HitAgg from Hits select k, sum(n) as total group by k aggregate every sec;
from Ask as q left outer join HitAgg as h
within 0L, 100000L per "seconds"
select q.k as asked, h.k as k, total
order by total desc
limit 2 offset 1
insert into Top;
`
	e := newEngine(t, "", app)
	mustApply(t, e, 1, 1000, "Hits", hit("a", 5), hit("b", 7), hit("c", 1))
	mustApply(t, e, 2, 2000, "Hits", hit("d", 3))
	outs := mustApply(t, e, 3, 3000, "Ask", expr.Row{expr.String("x")})
	if got, want := outJSON(outs, "Top"), `{"asked":"x","k":"a","total":5} {"asked":"x","k":"d","total":3}`; got != want {
		t.Errorf("order by total desc limit 2 offset 1:\n got %s\nwant %s", got, want)
	}
	e2 := newEngine(t, "", strings.Replace(app, "limit 2 offset 1", "", 1))
	outs = mustApply(t, e2, 1, 3000, "Ask", expr.Row{expr.String("x")})
	if got, want := outJSON(outs, "Top"), `{"asked":"x","k":null,"total":null}`; got != want {
		t.Errorf("nothing to join, left outer: got %s, want %s", got, want)
	}
}

const feederApp = `@app:name('Feeder')
@source(type='inMemory', topic='REQ')
define stream Req (app string, user string, api string, ts long);
define aggregation UserAgg from Req
select app, user, api, count() as hits
group by app, user
aggregate by ts every sec...hour;
`

// readerApp declares UserAgg read-only with fewer outputs, in another order.
const readerApp = `@app:name('Reader')
define stream Req (app string, user string, api string, ts long);
define stream Ask (since long, until long);
@persistedAggregation(enable='false', is.read.only='true')
define aggregation UserAgg from Req
select count() as hits, user, app
group by app, user
aggregate by ts every sec...hour;
from Ask join UserAgg within since, until per "minutes"
select app, user, hits
insert into Seen;
`

// A read-only aggregation reads the feeding app's rows once that app is deployed, whichever
// comes first; undeploying the feeder leaves the reader finding nothing, and a new feeder
// starts empty. An incompatible declaration is refused either way round.
func TestAggJoin_ReadOnly(t *testing.T) {
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Deploy(readerApp)
	if err != nil {
		t.Fatalf("deploy reader: %v", err)
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "no deployed app defines and feeds UserAgg") {
		t.Errorf("reader notes %q, want one saying nothing feeds UserAgg", r.Notes)
	}
	if len(r.Aggregations()) != 0 || len(r.ReadOnlyAggregations()) != 1 {
		t.Errorf("reader has %d aggregations and %d read-only ones, want 0 and 1", len(r.Aggregations()), len(r.ReadOnlyAggregations()))
	}
	const t0 = int64(1514764800000)
	askRow := expr.Row{expr.Long(t0), expr.Long(t0 + 3600000)}
	if outs := mustApply(t, e, 1, t0+1000, "Ask", askRow); len(outs) != 0 {
		t.Errorf("no feeder: got %s", outJSON(outs, "Seen"))
	}
	// Events sent to the reader's own Req aggregate nothing.
	req := func(app, user string, ts int64) expr.Row {
		return expr.Row{expr.String(app), expr.String(user), expr.String("/api"), expr.Long(ts)}
	}
	mustApply(t, e, 2, t0+1000, "Reader.Req", req("app1", "ann", t0+500))
	bad := strings.Replace(feederApp, "group by app, user", "group by app", 1)
	if _, err := e.Deploy(bad); err == nil || !strings.Contains(err.Error(), "read-only") || !strings.Contains(err.Error(), "groups by app, user, the aggregation by app") {
		t.Errorf("incompatible feeder: err %v", err)
	}
	if _, err := e.Deploy(feederApp); err != nil {
		t.Fatalf("deploy feeder: %v", err)
	}
	publisher := `@app:name('Pub')
define stream In (app string, user string, api string, ts long);
@sink(type='inMemory', topic='REQ')
define stream Out (app string, user string, api string, ts long);
from In select * insert into Out;
`
	if _, err := e.Deploy(publisher); err != nil {
		t.Fatalf("deploy publisher: %v", err)
	}
	mustApply(t, e, 3, t0+2000, "In", req("app1", "ann", t0+1000), req("app1", "ann", t0+70000), req("app2", "bob", t0+71000))
	outs := mustApply(t, e, 4, t0+3000, "Ask", askRow)
	want := `{"app":"app1","user":"ann","hits":1} {"app":"app1","user":"ann","hits":1} {"app":"app2","user":"bob","hits":1}`
	if got := outJSON(outs, "Seen"); got != want {
		t.Errorf("with the feeder:\n got %s\nwant %s", got, want)
	}
	// The feeder's aggregation keeps its closed minutes for the reader's join.
	f, _ := e.App("Feeder")
	st, _ := f.Aggregation("UserAgg")
	if got := st.Retained(); len(got) != 1 || got[0] != siddhiql.Minutes {
		t.Errorf("the feeder keeps %v for joins, want [minutes]", got)
	}
	// A reader that does not fit the deployed feeder is refused.
	if _, err := e.Deploy(strings.Replace(readerApp, "aggregate by ts every sec...hour", "aggregate by ts every sec...min", 1)); err == nil || !strings.Contains(err.Error(), "it keeps seconds, minutes, the aggregation keeps seconds, minutes, hours") {
		t.Errorf("incompatible reader: err %v", err)
	}
	e.Undeploy("Feeder")
	if outs := mustApply(t, e, 5, t0+4000, "Ask", askRow); len(outs) != 0 {
		t.Errorf("feeder undeployed: got %s", outJSON(outs, "Seen"))
	}
	if _, err := e.Deploy(feederApp); err != nil {
		t.Fatalf("deploy feeder again: %v", err)
	}
	if outs := mustApply(t, e, 6, t0+5000, "Ask", askRow); len(outs) != 0 {
		t.Errorf("a new feeder starts empty: got %s", outJSON(outs, "Seen"))
	}
	mustApply(t, e, 7, t0+6000, "In", req("app3", "cy", t0+2000))
	if got, want := outJSON(mustApply(t, e, 8, t0+7000, "Ask", askRow), "Seen"), `{"app":"app3","user":"cy","hits":1}`; got != want {
		t.Errorf("after redeploying the feeder: got %s, want %s", got, want)
	}
	// The link survives a restore.
	snap, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	e2, _ := New(Config{})
	if err := e2.UnmarshalBinary(snap); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got, want := outJSON(mustApply(t, e2, 9, t0+8000, "Ask", askRow), "Seen"), `{"app":"app3","user":"cy","hits":1}`; got != want {
		t.Errorf("after restore: got %s, want %s", got, want)
	}
}

func TestParse_PersistedAggregation(t *testing.T) {
	for _, c := range []struct{ ann, err string }{
		{"@persistedAggregation(enable='maybe')", "enable must be 'true' or 'false'"},
		{"@persistedAggregation(is.read.only='true', is.read.only='false')", "duplicate is.read.only"},
		{"@persistedAggregation(cache='true')", `unknown @persistedAggregation element "cache"`},
	} {
		_, err := siddhiql.Parse("@app:name('P')\ndefine stream S (k string);\n" + c.ann + "\ndefine aggregation A from S select k, count() as n group by k aggregate every sec;")
		if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "3:") {
			t.Errorf("%s: error %v, want %q on line 3", c.ann, err, c.err)
		}
	}
	p, err := siddhiql.Parse("@app:name('P')\ndefine stream S (k string);\n@persistedAggregation(enable='true')\ndefine aggregation A from S select k, count() as n group by k aggregate every sec;")
	if err != nil || p.Aggregations[0].ReadOnly {
		t.Errorf("enable='true' alone: err %v, read-only %v; want a plain aggregation", err, err == nil && p.Aggregations[0].ReadOnly)
	}
}

// A join inside a partition is refused rather than run as a plain query on its left input.
func TestAggJoin_RefusedInsidePartition(t *testing.T) {
	e, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Deploy(`@app:name('P')
define stream S (k string, v long);
define aggregation A from S select k, sum(v) as total group by k aggregate every sec;
partition with (k of S)
begin
from S join A within 0L, 1000L per "seconds" select S.k insert into O;
end;`)
	if err == nil || !strings.Contains(err.Error(), "joins inside a partition are not supported") || !strings.Contains(err.Error(), "6:8") {
		t.Errorf("error %v, want joins inside a partition refused at 6:8", err)
	}
}
