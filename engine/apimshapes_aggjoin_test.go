package engine

import (
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
)

// apimAbnormal is an alert app in the shape of API-M Analytics' abnormal request count alert
// (written here with the same constructs): a trigger every minute stamps the last two minutes,
// a read-only ApiUserPerAppAgg (fed by apimAccess through the receivers' inMemory topic) is
// joined within them per minutes with group by, the counts are joined to an in-memory table
// of thresholds, and a left outer join with the alerts of the last 10 minutes suppresses
// repeats.
const apimAbnormal = `@App:name("ABNORMAL_REQUEST_COUNT")
@App:description("Alerts on applications whose requests per minute pass their threshold")
define trigger MinTriggerEventStream at every 1 minute;
-- Only defines the aggregation: nothing is sent here.
define stream Request (apiName string, apiVersion string, apiContext string, apiHostname string, applicationId string, applicationName string,
  username string, userTenantDomain string, userIp string, requestTimestamp long, throttledOut bool, destination string, gatewayType string);
define stream ConfStream (applicationId string, apiContext string, thresholdRequestCountPerMin int);
define stream SuppressedStream (applicationId string, apiContext string, tenantDomain string, requestCountPerMin long, thresholdRequestCountPerMin int);
@sink(type = 'inMemory', topic = 'AbnormalRequestsCountAlertStream')
define stream AlertStream (applicationId string, apiContext string, requestCountPerMin long, thresholdRequestCountPerMin int, message string, alertTimestamp long);
@PrimaryKey('applicationId', 'apiContext')
define table ConfInMemory (applicationId string, apiContext string, thresholdRequestCountPerMin int);
@store(type = 'rdbms', datasource = 'APIM_ANALYTICS_DB')
@purge(enable = 'false')
@persistedAggregation(enable='false', is.read.only='true')
define aggregation ApiUserPerAppAgg
from Request
select apiContext, applicationId, username, userTenantDomain, count() as totalRequestCount, 'default' as regionalID
group by apiContext, apiHostname, applicationId, username, userTenantDomain
aggregate by requestTimestamp every seconds...years;
from ConfStream
update or insert into ConfInMemory
  set ConfInMemory.thresholdRequestCountPerMin = thresholdRequestCountPerMin
  on ConfInMemory.applicationId == applicationId and ConfInMemory.apiContext == apiContext;
@info(name = 'Get past 2 minutes timestamp')
from MinTriggerEventStream
select triggered_time as currentTimestamp, (triggered_time - 2*60*1000) as endTimestamp, coordination:isLeader() as isLeader
insert into LeaderAwarePeriodicalTriggerStream;
from LeaderAwarePeriodicalTriggerStream[isLeader == true]
select currentTimestamp, endTimestamp
insert into LeadersPeriodicalTriggerStream;
@info(name = 'requestsPerMinCountingQuery')
from LeadersPeriodicalTriggerStream as T join ApiUserPerAppAgg as A
within T.endTimestamp, T.currentTimestamp
 per "minutes"
select applicationId, apiContext, userTenantDomain as tenantDomain, totalRequestCount as requestCountPerMin
group by applicationId, apiContext
insert current events into RequestsPerMinStream;
from RequestsPerMinStream as R join ConfInMemory as T
  on (R.applicationId == T.applicationId and R.apiContext == T.apiContext)
select R.applicationId, R.apiContext, R.tenantDomain, R.requestCountPerMin, T.thresholdRequestCountPerMin
insert into AbnormalTemp;
from AbnormalTemp[requestCountPerMin > thresholdRequestCountPerMin]
select *
insert into AbnormalTemp2;
@info(name = 'Alert Suppression')
from AbnormalTemp2#window.length(1) as a left outer join SuppressedStream#window.time(10 minute) as b
  on (a.applicationId == b.applicationId and a.apiContext == b.apiContext)
select a.applicationId, a.apiContext, a.tenantDomain, a.requestCountPerMin, a.thresholdRequestCountPerMin
  having b.apiContext is null
insert into SuppressedStream;
from SuppressedStream
select applicationId, apiContext, requestCountPerMin, thresholdRequestCountPerMin,
  'Abnormal request count detected during last minute.' as message, (time:timestampInMilliseconds()) as alertTimestamp
insert into AlertStream;
`

// TestAPIMShapes_AbnormalRequestCount runs the alert app against the receiver and the access
// summary, deployed after it, with a tick every 10 seconds and a flush after each tick (as a
// leader flushes): the minute join reads the feeder's closed minutes after they are flushed,
// the thresholds table picks the applications over their limit, and the suppression lets one
// alert per application through every 10 minutes.
func TestAPIMShapes_AbnormalRequestCount(t *testing.T) {
	e := newEngineApps(t, []string{apimAbnormal})
	a, _ := e.App("ABNORMAL_REQUEST_COUNT")
	if !strings.Contains(strings.Join(a.Notes, "\n"), "no deployed app defines and feeds ApiUserPerAppAgg") {
		t.Errorf("alone, the alert app's notes %q do not say nothing feeds ApiUserPerAppAgg", a.Notes)
	}
	recv := strings.NewReplacer("%NAME%", "EVENT_RECEIVER", "%VER%", "3.0.0").Replace(apimRecv)
	for _, app := range []string{recv, apimAccess} {
		if _, err := e.Deploy(app); err != nil {
			t.Fatalf("deploy: %v", err)
		}
	}
	const day = int64(1514764800000) // 2018-01-01 UTC; the apps start here
	s, l, b := expr.String, expr.Long, expr.Bool
	req := func(app, user string, ts int64) expr.Row {
		return expr.Row{s("pizza"), s("1.0"), s("/pizza/1.0"), s("gw1"), s(app), s(app + "-name"), s(user), s("carbon.super"),
			s("10.0.0.1"), l(ts), b(false), s("http://be1"), s("SYNAPSE")}
	}
	idx := uint64(0)
	var perMin, alerts []string
	collect := func(outs []Output) {
		for _, o := range outs {
			row := string(expr.AppendJSONObject(nil, o.Attrs, o.Row))
			switch o.Stream {
			case "RequestsPerMinStream":
				perMin = append(perMin, expr.Long(o.Time).String()+" "+row)
			case "AlertStream":
				alerts = append(alerts, row)
			}
		}
	}
	apply := func(now int64, stream string, rows ...expr.Row) {
		idx++
		outs, err := e.Apply(idx, now, stream, rows)
		if err != nil {
			t.Fatalf("%s: %v", stream, err)
		}
		collect(outs)
	}
	tickTo := func(until int64) {
		start := max(day, (e.Now()/10000+1)*10000)
		for now := start; now <= until; now += 10000 {
			idx++
			collect(e.Tick(idx, now))
			e.DropFlushed(idx) // a flush that has caught up
		}
	}
	tickTo(day)
	apply(day+1000, "ConfStream", expr.Row{s("app1"), s("/pizza/1.0"), expr.Int(2)}, expr.Row{s("app2"), s("/pizza/1.0"), expr.Int(5)})
	// Minute 1: app1 passes its threshold (3 > 2), app2 does not (2 <= 5).
	tickTo(day + 60000)
	apply(day+61000, "EVENT_RECEIVER.InComingRequestStream", req("app1", "ann", day+61000), req("app1", "ann", day+62000), req("app2", "bob", day+63000))
	apply(day+64000, "EVENT_RECEIVER.InComingRequestStream", req("app1", "ann", day+64000), req("app2", "bob", day+65000))
	tickTo(day + 180000)
	// Minutes 2 and 3 without events: the trigger at minute 3 still finds minute 1's rows,
	// closed and flushed since minute 2.
	want := []string{
		`1514764920000 {"applicationId":"app1","apiContext":"/pizza/1.0","tenantDomain":"carbon.super","requestCountPerMin":3}`,
		`1514764920000 {"applicationId":"app2","apiContext":"/pizza/1.0","tenantDomain":"carbon.super","requestCountPerMin":2}`,
		`1514764980000 {"applicationId":"app1","apiContext":"/pizza/1.0","tenantDomain":"carbon.super","requestCountPerMin":3}`,
		`1514764980000 {"applicationId":"app2","apiContext":"/pizza/1.0","tenantDomain":"carbon.super","requestCountPerMin":2}`,
	}
	if got := strings.Join(perMin, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("RequestsPerMinStream:\n got %s\nwant %s", got, strings.Join(want, "\n"))
	}
	alert := func(n int, at int64) string {
		return `{"applicationId":"app1","apiContext":"/pizza/1.0","requestCountPerMin":` + expr.Long(int64(n)).String() +
			`,"thresholdRequestCountPerMin":2,"message":"Abnormal request count detected during last minute.","alertTimestamp":` + expr.Long(at).String() + `}`
	}
	if got, want := strings.Join(alerts, "\n"), alert(3, day+120000); got != want {
		t.Errorf("alerts after minute 3:\n got %s\nwant %s", got, want)
	}
	// Minute 5: app1 again over its limit, within 10 minutes of its alert: suppressed.
	apply(day+301000, "EVENT_RECEIVER.InComingRequestStream", req("app1", "ann", day+301000), req("app1", "ann", day+302000), req("app1", "ann", day+303000))
	tickTo(day + 420000)
	if len(alerts) != 1 {
		t.Errorf("a repeat within 10 minutes was not suppressed: %s", strings.Join(alerts, "\n"))
	}
	// Minute 13: the first alert has left the 10-minute window: alert again.
	apply(day+781000, "EVENT_RECEIVER.InComingRequestStream", req("app1", "ann", day+781000), req("app1", "ann", day+782000), req("app1", "ann", day+783000), req("app1", "ann", day+784000))
	tickTo(day + 840000)
	if got, want := strings.Join(alerts, "\n"), alert(3, day+120000)+"\n"+alert(4, day+840000); got != want {
		t.Errorf("alerts after minute 14:\n got %s\nwant %s", got, want)
	}
	// The alert app reads what the summary aggregates: a store query on the feeder agrees.
	if got, want := records(t, e, "ACCESS_SUMMARY", `from ApiUserPerAppAgg within 0L, 9999999999999L per "days" select applicationId, totalRequestCount order by applicationId`),
		`{"records":[["app1",10],["app2",2]]}`; got != want {
		t.Errorf("store query: got %s, want %s", got, want)
	}
}
