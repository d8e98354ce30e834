package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
)

// shapesApp uses the table and join shapes of the API-M Analytics apps (written here, with
// their constructs): an rdbms-annotated table with a composite primary key kept by
// `update or insert into` from a stream–table left outer join, a counter table updated with
// `set T.n = T.n + n` under a misspelled qualifier, a stream–table join feeding a
// window, an alert-suppression self-feeding join, a right outer join with a table on the
// left, and a delete driven by it.
const shapesApp = `@App:name('Shapes')
define stream Request (api string, version string, creator string, tenant string, owner string, ts long, ip string, user string);
define stream Conf (app string, api string, threshold int);
define stream Check (app string, api string);
define stream Suppressed (api string, ts long);

@store(type = 'rdbms', datasource = "ANALYTICS_DB", field.length = "api:200")
@primaryKey('api', 'creator', 'version', 'tenant')
define table LastAccess (api string, version string, creator string, tenant string, owner string, lastAccessTime long);

@store(type = 'rdbms', datasource = 'ANALYTICS_DB')
@PrimaryKey('user', 'ip')
define table IPCount (user string, ip string, requestCount long) ;

@PrimaryKey('app', 'api')
@Index('app', 'api', 'threshold')
define table ConfInMemory (app string, api string, threshold int);

@info(name='Filter events to check latest timestamp')
from Request as R left outer join LastAccess as S
on R.api == S.api and R.tenant == S.tenant and R.creator == S.creator and R.version == S.version and R.ts >= S.lastAccessTime
select R.api, R.version, R.creator, R.tenant, R.owner, R.ts as lastAccessTime
insert into LastAccessUpdate;

from LastAccessUpdate
select api, version, creator, tenant, owner, lastAccessTime
update or
insert into LastAccess
set LastAccess.owner = owner, LastAccess.lastAccessTime = lastAccessTime
on LastAccess.api == api and LastAccess.tenant == tenant and LastAccess.creator == creator and LastAccess.version == version;

from Request
select user, ip, 1L as requestCount
update or insert into IPCount
set IPCounts.requestCount = IPCount.requestCount + requestCount
on IPCount.user == user and IPCount.ip == ip;

from Request#window.length(1) as R join IPCount as T
on (R.user == T.user and R.ip == T.ip)
select R.user, R.api, requestCount, ts
insert into Counted;

from Counted#window.length(1) as a left outer join Suppressed#window.time(10 minute) as b
on (a.api == b.api)
select a.api, a.ts
having not (b.api == a.api)
insert into Suppressed;

from Conf select app, api, threshold update or insert into ConfInMemory on ConfInMemory.app == app and ConfInMemory.api == api;

from ConfInMemory as a right outer join Check as b
on (a.app == b.app and a.api == b.api)
select b.app as app, b.api as api, a.threshold
insert into Checked;

from Checked[threshold == 0]
select app, api
delete ConfInMemory on ConfInMemory.app == app and ConfInMemory.api == api;
`

func TestRealShapes(t *testing.T) {
	e := newEngine(t, "", shapesApp)
	req := func(api string, ts int64, user string) expr.Row {
		return expr.Row{expr.String(api), expr.String("v1"), expr.String("admin"), expr.String("carbon.super"),
			expr.String("owner"), expr.Long(ts), expr.String("10.0.0.1"), expr.String(user)}
	}
	var outs []Output
	apply := func(i int, stream string, row expr.Row) {
		o, err := e.Apply(uint64(i), int64(1000+i), stream, []expr.Row{row})
		if err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
		outs = append(outs, o...)
	}
	apply(1, "Request", req("pizza", 500, "u1"))
	apply(2, "Request", req("pizza", 300, "u1")) // older: the left outer join still emits it, so the upsert sets 300, as Siddhi does
	apply(3, "Request", req("shop", 700, "u2"))
	apply(4, "Request", req("pizza", 900, "u1"))
	apply(5, "Conf", expr.Row{expr.String("app1"), expr.String("pizza"), expr.Int(10)})
	apply(6, "Conf", expr.Row{expr.String("app2"), expr.String("shop"), expr.Int(0)})
	apply(7, "Check", expr.Row{expr.String("app2"), expr.String("shop")})
	apply(8, "Check", expr.Row{expr.String("app3"), expr.String("none")})

	app, _ := e.App("Shapes")
	got := func(name string) string {
		tb, _ := app.Table(name)
		var b strings.Builder
		for _, r := range tb.Rows() {
			b.WriteString(fmt.Sprint(r))
			b.WriteString(";")
		}
		return b.String()
	}
	last := got("LastAccess")
	if !strings.Contains(last, "pizza") || !strings.Contains(last, "900") || strings.Count(last, ";") != 2 {
		t.Errorf("LastAccess = %s, want pizza at 900 and shop", last)
	}
	if c := got("IPCount"); !strings.Contains(c, `"u1" "10.0.0.1" 3]`) || !strings.Contains(c, `"u2" "10.0.0.1" 1]`) {
		t.Errorf("IPCount = %s, want u1 counted 3 times and u2 once", c)
	}
	if c := got("ConfInMemory"); strings.Contains(c, `"app2"`) || !strings.Contains(c, `"app1"`) {
		t.Errorf("ConfInMemory = %s, want app2 deleted (threshold 0) and app1 kept", c)
	}
	var checked, suppressed []string
	for _, o := range outs {
		switch o.Stream {
		case "Checked":
			checked = append(checked, fmt.Sprint(o.Row))
		case "Suppressed":
			suppressed = append(suppressed, fmt.Sprint(o.Row))
		}
	}
	if fmt.Sprint(suppressed) != `[["pizza" 500] ["shop" 700]]` {
		t.Errorf("Suppressed = %v, want the first alert per api only", suppressed)
	}
	if fmt.Sprint(checked) != `[["app2" "shop" 0] ["app3" "none" null]]` {
		t.Errorf("Checked = %v", checked)
	}
}

// configAlertApp is the alert apps' shape: a configuration table written on demand, copied
// into an in-memory table by a join from a load stream (a trigger in the real apps), joined
// with requests for thresholds, and alerts suppressed for 10 minutes by a join into its own
// windowed input.
const configAlertApp = `@App:name('ConfigAlert')
define stream Load (triggered_time long);
define stream Req (api string, creator string, backend long);
define stream Suppressed (api string, backend long, threshold long);
@store(type = 'rdbms', datasource = 'DB')
@PrimaryKey('api', 'creator')
define table Conf (api string, creator string, thresholdResponse long, thresholdBackend long);
@PrimaryKey('api', 'creator')
define table ConfInMemory (api string, creator string, thresholdBackend long);

from Load join Conf
select api, creator, thresholdBackend
update or
insert into ConfInMemory
set Conf.thresholdBackend = thresholdBackend
  on ConfInMemory.api == api and ConfInMemory.creator == creator;

from Req as R join ConfInMemory as C
  on (R.api == C.api and R.creator == C.creator)
select R.api, R.backend, C.thresholdBackend
insert into Temp;

from Temp[thresholdBackend > 0 and backend > thresholdBackend]
select api, backend, thresholdBackend as threshold
insert into Temp2;

from Temp2#window.length(1) as a left outer join Suppressed#window.time(10 minute) as b
  on (a.api == b.api)
select a.api, a.backend, a.threshold
  having not (b.api == b.api)
insert into Suppressed;
`

func TestRealShapes_ConfigAlert(t *testing.T) {
	e := newEngine(t, "", configAlertApp)
	if err := e.TableWrite(1, 1000, "ConfigAlert", "select 'pizza' as api, 'admin' as creator, 100L as thresholdResponse, 50L as thresholdBackend insert into Conf"); err != nil {
		t.Fatal(err)
	}
	mustApply(t, e, 2, 2000, "Load", expr.Row{expr.Long(2000)})
	var alerts []string
	for i, s := range []struct{ ts, backend int64 }{{3000, 10}, {4000, 80}, {5000, 90}, {700000, 95}} {
		for _, o := range mustApply(t, e, uint64(3+i), s.ts, "Req", expr.Row{expr.String("pizza"), expr.String("admin"), expr.Long(s.backend)}) {
			if o.Stream == "Suppressed" {
				alerts = append(alerts, fmt.Sprintf("%d:%d", o.Time, o.Row[1].I))
			}
		}
	}
	if fmt.Sprint(alerts) != "[4000:80 700000:95]" {
		t.Errorf("alerts %v, want one at 4000 (80 > 50), the one at 5000 suppressed, one at 700000", alerts)
	}
}
