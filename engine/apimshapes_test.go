package engine

import (
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
)

// Apps in the shapes of API-M Analytics (written here with the same constructs): two
// receiver versions that take the gateways' events on streams of the same names and
// publish them to the same inMemory topics; summary apps that each subscribe a stream of
// their own named like the publisher's and aggregate it; an alert app that subscribes to
// the throttle topic with only some of its attributes.
const apimRecv = `@App:name("%NAME%")
@App:description("Receives the gateways' streams and passes them on")
@source(type = 'wso2event', wso2.stream.id = 'org.example.request:%VER%', @map(type = 'wso2event'))
define stream InComingRequestStream (apiName string, apiVersion string, apiContext string, apiHostname string, applicationId string, applicationName string,
  username string, userTenantDomain string, userIp string, requestTimestamp long, throttledOut bool, destination string, gatewayType string);
@source(type = 'wso2event', wso2.stream.id = 'org.example.fault:%VER%', @map(type = 'wso2event'))
define stream InComingFaultStream (apiName string, apiVersion string, apiContext string, hostname string, applicationId string, applicationName string,
  errorCode int, requestTimestamp long);
@source(type = 'wso2event', wso2.stream.id = 'org.example.throttle:%VER%', @map(type = 'wso2event'))
define stream InComingThrottledOutStream (apiName string, apiVersion string, apiContext string, hostname string, applicationId string,
  applicationName string, throttledOutReason string, throttledOutTimestamp long);
@sink(type='inMemory', topic='APIM_REQUEST')
define stream Request (apiName string, apiVersion string, apiContext string, apiHostname string, applicationId string, applicationName string,
  username string, userTenantDomain string, userIp string, requestTimestamp long, throttledOut bool, destination string, gatewayType string);
@sink(type='inMemory', topic='FaultStream')
define stream FaultStream (apiName string, apiVersion string, apiContext string, hostname string, applicationId string, applicationName string,
  errorCode int, requestTimestamp long);
@sink(type='inMemory', topic='ThrottledOutStream')
define stream ThrottledOutStream (apiName string, apiVersion string, apiContext string, hostname string, applicationId string,
  applicationName string, throttledOutReason string, throttledOutTimestamp long);
@info(name='Trim the event values')
from InComingRequestStream
select apiName, apiVersion, apiContext, ifThenElse(str:length(apiHostname) > 200, str:substr(apiHostname, 0, 200), apiHostname) as apiHostname,
  applicationId, applicationName, ifThenElse(str:length(username) > 150, str:substr(username, 0, 150), username) as username,
  userTenantDomain, userIp, requestTimestamp, throttledOut, destination, gatewayType
insert into Request;
from InComingFaultStream select * insert into FaultStream;
from InComingThrottledOutStream
select apiName, apiVersion, apiContext, hostname, applicationId, applicationName,
  ifThenElse(str:length(throttledOutReason) > 30, str:substr(throttledOutReason, 0, 30), throttledOutReason) as throttledOutReason, throttledOutTimestamp
insert into ThrottledOutStream;
`

const apimAccess = `@App:name("ACCESS_SUMMARY")
@source(type='inMemory', topic='APIM_REQUEST', @map(type='passThrough'))
define stream Request (apiName string, apiVersion string, apiContext string, apiHostname string, applicationId string, applicationName string,
  username string, userTenantDomain string, userIp string, requestTimestamp long, throttledOut bool, destination string, gatewayType string);
define stream ApiUsagePerVersionFilteredStream (apiName string, apiContext string, apiHostname string, applicationId string, applicationName string,
  quotaExceededValue int, requestTimestamp long);
define stream geoTempStream (apiName string, apiContext string, country string, city string, requestTimestamp long);
@store(type = 'rdbms', datasource = 'APIM_ANALYTICS_DB')
@purge(enable='true', interval='60 min', @retentionPeriod(sec='5 minutes', min='72 hours', hours='90 days', days='1 year', months='10 years'))
define aggregation GeoLocationAgg
from geoTempStream
select apiName, country, city, count() as totalCount, 'default' as regionalID
group by apiContext, country, city
aggregate by requestTimestamp every seconds...years;
@store(type = 'rdbms', datasource = 'APIM_ANALYTICS_DB')
define aggregation ApiVersionPerAppAgg
from ApiUsagePerVersionFilteredStream
select apiName, apiContext, applicationName, count() as totalRequestCount, sum(quotaExceededValue) as aboveQuotaCount, 'default' as regionalID
group by apiContext, apiHostname, applicationId
aggregate by requestTimestamp every seconds...years;
@store(type = 'rdbms', datasource = 'APIM_ANALYTICS_DB')
define aggregation ApiPerDestinationAgg
from Request
select apiName, apiContext, destination, count() as totalRequestCount, gatewayType, 'default' as regionalID
group by apiContext, apiHostname, destination
aggregate by requestTimestamp every seconds...years;
@store(type = 'rdbms', datasource = 'APIM_ANALYTICS_DB')
define aggregation ApiUserPerAppAgg
from Request
select apiContext, applicationId, username, userTenantDomain, count() as totalRequestCount, 'default' as regionalID
group by apiContext, apiHostname, applicationId, username, userTenantDomain
aggregate by requestTimestamp every seconds...years;
@info(name='Resolve geo attributes')
from Request
select apiName, apiContext, ifThenElse(geo:findCountryFromIP(userIp) == "", "N/A", geo:findCountryFromIP(userIp)) as country,
  ifThenElse(geo:findCityFromIP(userIp) == "", "N/A", geo:findCityFromIP(userIp)) as city, requestTimestamp
insert into geoTempStream;
@info(name='Resolve api usage')
from Request
select apiName, apiContext, apiHostname, applicationId, applicationName, ifThenElse(throttledOut, 1, 0) as quotaExceededValue, requestTimestamp
insert current events into ApiUsagePerVersionFilteredStream;
`

const apimFault = `@App:name("FAULT_SUMMARY")
@source(type='inMemory', topic='FaultStream', @map(type='passThrough'))
define stream FaultStream (apiName string, apiVersion string, apiContext string, hostname string, applicationId string, applicationName string,
  errorCode int, requestTimestamp long);
@store(type = 'rdbms', datasource = 'APIM_ANALYTICS_DB')
define aggregation ApiFaultyInvocationAgg
from FaultStream
select apiName, apiContext, hostname, applicationId, count() as totalFaultCount, 'default' as regionalID
group by apiContext, applicationId, hostname
aggregate by requestTimestamp every seconds...year;
`

const apimThrottle = `@App:name("THROTTLED_OUT_SUMMARY")
@source(type='inMemory', topic='ThrottledOutStream', @map(type='passThrough'))
define stream ThrottledOutStream (apiName string, apiVersion string, apiContext string, hostname string, applicationId string,
  applicationName string, throttledOutReason string, throttledOutTimestamp long);
@store(type = 'rdbms', datasource = 'APIM_ANALYTICS_DB')
define aggregation ApiThrottledOutAgg
from ThrottledOutStream
select apiName, apiContext, applicationId, count() as throttledOutCount, throttledOutReason, hostname, 'default' as regionalID
group by apiContext, applicationId, hostname
aggregate by throttledOutTimestamp every seconds...year;
`

// apimTier subscribes to the throttle topic with fewer attributes than are published.
const apimTier = `@App:name("TIER_LIMIT_ALERT")
@source(type = 'inMemory', topic = 'ThrottledOutStream')
define stream ThrottledOutStream (apiName string, applicationId string, throttledOutTimestamp long);
from ThrottledOutStream#window.length(10)
select applicationId, count() as hits
group by applicationId
insert into TierHits;
`

func TestAPIMShapes_EventsReachTheSummaries(t *testing.T) {
	recv := func(name, ver string) string {
		return strings.NewReplacer("%NAME%", name, "%VER%", ver).Replace(apimRecv)
	}
	e := newEngineApps(t, []string{recv("EVENT_RECEIVER", "3.0.0"), recv("EVENT_RECEIVER_3.2.0", "3.2.0"), apimAccess, apimFault, apimThrottle, apimTier})
	const day = int64(1514764800000) // 2018-01-01 UTC
	s, l, b, i := expr.String, expr.Long, expr.Bool, expr.Int
	req := func(api, app, user, dest string, throttled bool, ts int64) expr.Row {
		return expr.Row{s(api), s("1.0"), s("/" + api + "/1.0"), s("gw1"), s(app), s(app + "-name"), s(user), s("carbon.super"),
			s("10.0.0.1"), l(ts), b(throttled), s(dest), s("SYNAPSE")}
	}
	fault := func(api, app string, ts int64) expr.Row {
		return expr.Row{s(api), s("1.0"), s("/" + api + "/1.0"), s("gw1"), s(app), s(app + "-name"), i(900800), l(ts)}
	}
	throttle := func(api, app string, ts int64) expr.Row {
		return expr.Row{s(api), s("1.0"), s("/" + api + "/1.0"), s("gw1"), s(app), s(app + "-name"), s("SUBSCRIPTION_LIMIT_EXCEEDED_BY_FAR"), l(ts)}
	}
	batches := []struct {
		stream string
		rows   []expr.Row
	}{
		{"EVENT_RECEIVER.InComingRequestStream", []expr.Row{
			req("pizza", "app1", "ann", "http://be1", false, day+1000),
			req("pizza", "app1", "bob", "http://be2", false, day+2000),
			req("pizza", "app2", "ann", "http://be1", true, day+3000)}},
		{"EVENT_RECEIVER_3.2.0.InComingRequestStream", []expr.Row{req("menu", "app1", "ann", "http://be1", false, day+4000)}},
		{"EVENT_RECEIVER.InComingFaultStream", []expr.Row{fault("pizza", "app1", day+5000), fault("pizza", "app1", day+6000)}},
		{"EVENT_RECEIVER_3.2.0.InComingFaultStream", []expr.Row{fault("menu", "app2", day+7000)}},
		{"EVENT_RECEIVER_3.2.0.InComingThrottledOutStream", []expr.Row{throttle("pizza", "app1", day+8000), throttle("pizza", "app1", day+9000)}},
		{"EVENT_RECEIVER.InComingThrottledOutStream", []expr.Row{throttle("pizza", "app1", day+9500)}},
	}
	var tier []string
	for k, bt := range batches {
		outs, err := e.Apply(uint64(k+1), day+10000+int64(k), bt.stream, bt.rows)
		if err != nil {
			t.Fatalf("%s: %v", bt.stream, err)
		}
		for _, o := range outs {
			if o.Stream == "TierHits" {
				tier = append(tier, string(expr.AppendJSONObject(nil, o.Attrs, o.Row)))
			}
		}
	}
	// The bare name of a stream both receivers define is ambiguous.
	if _, err := e.Apply(99, day+20000, "InComingRequestStream", nil); err == nil || !strings.Contains(err.Error(), "EVENT_RECEIVER.InComingRequestStream or EVENT_RECEIVER_3.2.0.InComingRequestStream") {
		t.Errorf("bare InComingRequestStream: err = %v", err)
	}

	within := ` within 0L, 9999999999999L per "days" select `
	for _, c := range []struct{ app, query, want string }{
		{"ACCESS_SUMMARY", "from ApiPerDestinationAgg" + within + "apiContext, destination, totalRequestCount order by apiContext, destination",
			`[["/menu/1.0","http://be1",1],["/pizza/1.0","http://be1",2],["/pizza/1.0","http://be2",1]]`},
		{"ACCESS_SUMMARY", "from ApiVersionPerAppAgg" + within + "apiContext, applicationName, totalRequestCount, aboveQuotaCount order by apiContext, applicationName",
			`[["/menu/1.0","app1-name",1,0],["/pizza/1.0","app1-name",2,0],["/pizza/1.0","app2-name",1,1]]`},
		{"ACCESS_SUMMARY", "from ApiUserPerAppAgg" + within + "apiContext, applicationId, username, totalRequestCount order by apiContext, applicationId, username",
			`[["/menu/1.0","app1","ann",1],["/pizza/1.0","app1","ann",1],["/pizza/1.0","app1","bob",1],["/pizza/1.0","app2","ann",1]]`},
		{"ACCESS_SUMMARY", "from GeoLocationAgg" + within + "apiContext, country, city, totalCount order by apiContext",
			`[["/menu/1.0","N/A","N/A",1],["/pizza/1.0","N/A","N/A",3]]`},
		{"FAULT_SUMMARY", "from ApiFaultyInvocationAgg" + within + "apiContext, applicationId, totalFaultCount order by apiContext",
			`[["/menu/1.0","app2",1],["/pizza/1.0","app1",2]]`},
		{"THROTTLED_OUT_SUMMARY", "from ApiThrottledOutAgg" + within + "apiContext, applicationId, throttledOutCount, throttledOutReason",
			`[["/pizza/1.0","app1",3,"SUBSCRIPTION_LIMIT_EXCEEDED_BY"]]`},
	} {
		res, err := e.Query(c.app, c.query)
		if err != nil {
			t.Errorf("%s: %v", c.query, err)
			continue
		}
		if got := string(res.AppendJSON(nil, false)); got != `{"records":`+c.want+`}` {
			t.Errorf("%s:\n got %s\nwant %s", c.query, got, c.want)
		}
	}
	// The alert app takes its three attributes of each throttle event by name.
	if got, want := strings.Join(tier, " "), `{"applicationId":"app1","hits":1} {"applicationId":"app1","hits":2} {"applicationId":"app1","hits":3}`; got != want {
		t.Errorf("TierHits %s, want %s", got, want)
	}
}
