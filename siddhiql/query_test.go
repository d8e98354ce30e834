package siddhiql

import (
	"testing"
)

const qStream = "define stream S (sym string, price double, qty long, ts long);\n"

func queryOf(t *testing.T, src string) *Query {
	t.Helper()
	app := mustParse(t, qStream+src)
	if len(app.Queries) != 1 {
		t.Fatalf("got %d queries", len(app.Queries))
	}
	return app.Queries[0]
}

func TestParse_QuerySiddhiExample(t *testing.T) {
	q := queryOf(t, `@info(name='alert')
from S[price > 100]#window.time(1 min)[qty > 0] select sym, sum(qty) as q group by sym having q > 1000 insert all events into Alerts;`)
	if q.Name != "alert" || q.From != "S" || q.Into != "Alerts" || q.Output != AllEvents || q.Pos != (Pos{3, 1}) {
		t.Errorf("query = %+v", q)
	}
	if FormatExpr(q.Filter) != "(price > 100)" || FormatExpr(q.PostFilter) != "(qty > 0)" || FormatExpr(q.Having) != "(q > 1000)" {
		t.Errorf("filters = %s / %s / %s", FormatExpr(q.Filter), FormatExpr(q.PostFilter), FormatExpr(q.Having))
	}
	if w := q.Window; w == nil || w.Name != "time" || len(w.Args) != 1 || FormatExpr(w.Args[0]) != "1 min" || w.Pos != (Pos{3, 28}) {
		t.Errorf("window = %+v", q.Window)
	}
	if q.SelectAll || len(q.Select) != 2 || q.Select[1].Alias != "q" || len(q.GroupBy) != 1 {
		t.Errorf("select = %+v group by %+v", q.Select, q.GroupBy)
	}
}

func TestParse_QueryOutputs(t *testing.T) {
	tests := []struct {
		insert string
		want   OutputEvents
	}{
		{"insert into O", CurrentEvents},
		{"insert events into O", CurrentEvents},
		{"insert current events into O", CurrentEvents},
		{"INSERT EXPIRED EVENTS INTO O", ExpiredEvents},
		{"insert all events into O", AllEvents},
	}
	for _, tt := range tests {
		q := queryOf(t, "from S#window.length(3) select * "+tt.insert)
		if q.Output != tt.want || q.Into != "O" || !q.SelectAll {
			t.Errorf("%s: Output = %s, Into = %q, SelectAll = %t", tt.insert, q.Output, q.Into, q.SelectAll)
		}
	}
}

func TestParse_QueryForms(t *testing.T) {
	q := queryOf(t, "from S insert into O")
	if !q.SelectAll || q.Window != nil || q.Filter != nil || q.Name != "" {
		t.Errorf("bare query = %+v", q)
	}
	q = queryOf(t, "from S[price > 1][qty < 2] select price * qty as v, S.sym insert into O")
	if FormatExpr(q.Filter) != "((price > 1) and (qty < 2))" || q.Select[1].OutputName() != "sym" {
		t.Errorf("query = %+v", q)
	}
	app := mustParse(t, qStream+"@info(name='a') from S insert into O; @info(name='b') from O insert into P")
	if len(app.Queries) != 2 || app.Queries[1].From != "O" {
		t.Errorf("queries = %s", Dump(app))
	}
}

func TestParse_Windows(t *testing.T) {
	tests := []struct{ in, name string }{
		{"length(5)", "length"},
		{"lengthBatch(5)", "lengthBatch"},
		{"lengthBatch(5, true)", "lengthBatch"},
		{"time(1 min)", "time"},
		{"timeBatch(1 sec)", "timeBatch"},
		{"timeBatch(1 sec, 0L)", "timeBatch"},
		{"timeBatch(1 sec, 0L, true)", "timeBatch"},
		{"externalTime(ts, 1 hour)", "externalTime"},
		{"externalTimeBatch(ts, 1 min)", "externalTimeBatch"},
		{"externalTimeBatch(S.ts, 1 min, 0L, 5 sec, true)", "externalTimeBatch"},
		{"TIMEBATCH(10 sec)", "timeBatch"},
	}
	for _, tt := range tests {
		q := queryOf(t, "from S#window."+tt.in+" select sym insert into O")
		if q.Window == nil || q.Window.Name != tt.name {
			t.Errorf("%s: window = %+v, want %s", tt.in, q.Window, tt.name)
		}
	}
}

func TestParse_QueryErrors(t *testing.T) {
	runErrCases(t, func(src string) error { return parseApp(qStream + src) }, []errCase{
		{"unknown window", "from S#window.sort(5, price) insert into O", "2:15",
			`unknown window "sort": supported windows are length, lengthBatch, time, timeBatch, externalTime, externalTimeBatch`},
		{"timeLength", "from S#window.timeLength(1 sec, 5) insert into O", "2:15", `unknown window "timeLength"`},
		{"namespaced window", "from S#window.unique:first(sym) insert into O", "2:15", `unknown window "unique:first": namespaced windows are not supported`},
		{"stream function", "from S#str:tokenize(sym, ',') insert into O", "2:7", "stream function #str:tokenize is not supported"},
		{"plain stream function", "from S#log('x') insert into O", "2:7", "stream function #log is not supported"},
		{"second window", "from S#window.length(5)#window.time(1 sec) insert into O", "2:32", `a query may have at most one window: found a second window "time" after "length"`},
		{"second window after filter", "from S#window.length(5)[price > 1]#window.time(1 sec) insert into O", "2:43", "at most one window"},
		{"length args", "from S#window.length() insert into O", "2:15", "window length takes 1 argument, length(n); found 0"},
		{"length too many", "from S#window.length(1, 2) insert into O", "2:15", "window length takes 1 argument, length(n); found 2"},
		{"lengthBatch args", "from S#window.lengthBatch(1, true, 3) insert into O", "2:15", "window lengthBatch takes 1 to 2 arguments"},
		{"time args", "from S#window.time(1 sec, 2) insert into O", "2:15", "window time takes 1 argument, time(t); found 2"},
		{"timeBatch args", "from S#window.timeBatch(1 sec, 0L, true, 4) insert into O", "2:15", "window timeBatch takes 1 to 3 arguments"},
		{"externalTime args", "from S#window.externalTime(ts) insert into O", "2:15", "window externalTime takes 2 arguments, externalTime(timestamp, t); found 1"},
		{"externalTimeBatch args", "from S#window.externalTimeBatch(ts, 1 sec, 0L, 1 sec, true, 6) insert into O", "2:15", "window externalTimeBatch takes 2 to 5 arguments"},
		{"externalTime attribute", "from S#window.externalTime(1 sec, 1 sec) insert into O", "2:28", "the first argument of window externalTime must be the timestamp attribute"},
		{"window without parens", "from S#window.length insert into O", "2:22", "expected '(' after window length, found 'insert'"},
		{"window missing dot", "from S#window length(1) insert into O", "2:15", "expected '.' after '#window', found 'length'"},
		{"order by", "from S select sym order by sym insert into O", "2:19", "order by is not supported in streaming queries"},
		{"limit", "from S select sym limit 5 insert into O", "2:19", "limit is not supported in streaming queries"},
		{"offset", "from S select sym offset 5 insert into O", "2:19", "offset is not supported in streaming queries"},
		{"output rate zero", "from S select sym output every 0 events insert into O", "2:32", "the number of events in 'output every' must be positive, found 0"},
		{"output rate no unit", "from S select sym output last every 5 insert into O", "2:39", "expected 'events' or a time unit after 'every 5', found 'insert'"},
		{"output snapshot events", "from S select sym output snapshot every 5 events insert into O", "2:41", "'output snapshot every' takes a time"},
		{"output rate no every", "from S select sym output last 5 events insert into O", "2:31", "expected 'every' in the output clause"},
		{"output rate expression", "from S select sym output every price insert into O", "2:32", "expected a number of events or a time after 'every'"},
		{"output rate before insert", "from S select sym output every 1 sec", "2:37", "expected 'insert into' after the output clause"},
		{"update without on", "from S select sym update T set T.a = sym", "2:41", "expected 'on' and a condition after 'update T', found end of input"},
		{"update or insert", "from S select sym update or T on T.sym == sym", "2:29", "expected 'insert' after 'update or', found 'T'"},
		{"delete for", "from S select sym delete T for some events on T.sym == sym", "2:32", "expected 'current', 'expired' or 'all' after 'for', found 'some'"},
		{"return", "from S select sym return", "2:19", "'return' is not supported"},
		{"no insert", "from S select sym", "2:18", "expected 'insert into' to end the query, found end of input"},
		{"insert all no events", "from S select sym insert all into O", "2:30", "expected 'events' after 'insert all', found 'into'"},
		{"raw events", "from S select sym insert expired raw events into O", "2:34", "raw events are not supported"},
		{"insert no into", "from S select sym insert O", "2:26", "expected 'into' after 'insert', found 'O'"},
		{"insert inner", "from S select sym insert into #O", "2:31", "inner streams ('#') belong to partitions"},
		{"outer join", "from S outer join T on S.sym == T.sym select S.sym insert into O", "2:8", "'outer' must follow 'left', 'right' or 'full'"},
		{"left join", "from S#window.length(1) left join T on S.sym == T.sym select S.sym insert into O", "2:30", "expected 'outer' after 'left', found 'join'"},
		{"unidirectional", "from S unidirectional join T unidirectional select sym insert into O", "2:28", "only one side of a join can be unidirectional"},
		{"alias", "from S as s select sym insert into O", "2:13", "expected 'join' after the join's left input, found 'select'"},
		{"pattern every", "from every e1=S -> e2=S select e1.sym insert into O", "2:6", "patterns ('every') are not supported"},
		{"pattern", "from e1=S -> e2=S select e1.sym insert into O", "2:8", "patterns and sequences ('e1=...') are not supported"},
		{"pattern arrow", "from S -> S select sym insert into O", "2:8", "patterns and sequences ('->') are not supported"},
		{"sequence", "from S, S select sym insert into O", "2:7", "sequences (',' between streams) are not supported"},
		{"inner stream", "from #S select sym insert into O", "2:6", "inner streams ('#') belong to partitions"},
		{"needs as", "from S select price * 2 insert into O", "2:15", "select expression needs 'as <name>'"},
		{"needs as literal", "from S select 'x' insert into O", "2:15", "select expression needs 'as <name>'"},
		{"duplicate output", "from S select sym, price as sym insert into O", "2:20", `duplicate output attribute "sym" in select (first at 2:15)`},
		{"duplicate qualified output", "from S select S.price, price insert into O", "2:24", `duplicate output attribute "price"`},
		{"group by expression", "from S select sym group by f(sym) insert into O", "2:28", "group by needs attribute names, not expressions"},
		{"group without by", "from S select sym group sym insert into O", "2:25", "expected 'by' after 'group', found 'sym'"},
		{"filter not closed", "from S[price > 1 insert into O", "2:18", "expected ']' to close the filter opened at 2:7, found 'insert'"},
		{"duplicate query name", "@info(name='q') from S insert into O;\n@info(name='q') from S insert into P", "3:17", `query name "q" is already used by the query at 2:17`},
		{"two infos", "@info(name='a') @info(name='b') from S insert into O", "2:17", "a query may have only one @info"},
		{"empty name", "@info(name='') from S insert into O", "2:7", "@info name must not be empty"},
		{"lex error wins in order", "from S select sym insert into O; $", "2:34", "unexpected character '$'"},
	})
}

func TestParseStoreQuery(t *testing.T) {
	tests := []struct{ in, want string }{
		{`from TradeAggregation within "2014-02-15 00:00:00 +05:30", "2014-03-16 00:00:00 +05:30" per "days" select symbol, total, avgPrice;`,
			`store query from TradeAggregation  (1:1)
  within "2014-02-15 00:00:00 +05:30"  (1:30)
  within end "2014-03-16 00:00:00 +05:30"  (1:60)
  per "days"  (1:93)
  select
    symbol  (1:107)
    total  (1:115)
    avgPrice  (1:122)
`},
		{`from TradeAggregation on symbol == "FB" within "2014-02-15 **:**:** +05:30" per "hours" select symbol, total, avgPrice`,
			`store query from TradeAggregation  (1:1)
  on (symbol == "FB")  (1:33)
  within "2014-02-15 **:**:** +05:30"  (1:48)
  per "hours"  (1:81)
  select
    symbol  (1:96)
    total  (1:104)
    avgPrice  (1:111)
`},
		{`from TradeAggregation within 1496200000000L, 1596434876000L per 'seconds' select AGG_TIMESTAMP, symbol, total order by AGG_TIMESTAMP;`,
			`store query from TradeAggregation  (1:1)
  within 1496200000000L  (1:30)
  within end 1596434876000L  (1:46)
  per "seconds"  (1:65)
  select
    AGG_TIMESTAMP  (1:82)
    symbol  (1:97)
    total  (1:105)
  order by AGG_TIMESTAMP asc
`},
		{`FROM A as T within 0L, 10L per 'h'`,
			`store query from A as T  (1:1)
  within 0L  (1:20)
  within end 10L  (1:24)
  per "h"  (1:32)
  select *
`},
		{`from A within 0L, 10L per S.perValue select * group by sym having total > 5 order by sym desc, total asc, x limit 10 offset 2 ;`,
			`store query from A  (1:1)
  within 0L  (1:15)
  within end 10L  (1:19)
  per S.perValue  (1:27)
  select *
  group by sym
  having (total > 5)  (1:73)
  order by sym desc
  order by total asc
  order by x asc
  limit 10  (1:115)
  offset 2  (1:125)
`},
		{`from A within 0L, 10L per 'DAYS' select T.sym as s, sum(total) as t group by T.sym`,
			`store query from A  (1:1)
  within 0L  (1:15)
  within end 10L  (1:19)
  per "DAYS"  (1:27)
  select
    T.sym as s  (1:41)
    sum(total) as t  (1:53)
  group by T.sym
`},
	}
	for _, tt := range tests {
		q, err := ParseStoreQuery(tt.in)
		if err != nil {
			t.Errorf("ParseStoreQuery(%q): %v", tt.in, err)
			continue
		}
		if got := DumpStoreQuery(q); got != tt.want {
			t.Errorf("ParseStoreQuery(%q) =\n%s\nwant\n%s", tt.in, got, tt.want)
		}
	}
}

func TestParseStoreQuery_Errors(t *testing.T) {
	parse := func(src string) error {
		_, err := ParseStoreQuery(src)
		return err
	}
	runErrCases(t, parse, []errCase{
		{"no within", "from A per 'days' select x", "1:8", "store query on an aggregation needs 'within'"},
		{"no within or per", "from A select x", "1:8", "store query on an aggregation needs 'within'"},
		{"no per", "from A within 0L, 1L select x", "1:22", "store query on an aggregation needs 'per'"},
		{"empty", "", "1:1", "expected 'from' at the start of a store query, found end of input"},
		{"unknown per", "from A within 0L, 1L per 'weeks'", "1:26", `unknown per duration "weeks"`},
		{"per not string", "from A within 0L, 1L per 5", "1:26", "per needs a duration string such as 'hours', found 5"},
		{"trailing", "from A within 0L, 1L per 'days' select x insert into O", "1:42", "unexpected 'insert' after store query"},
		{"two semicolons", "from A within 0L, 1L per 'days';;", "1:33", "unexpected ';' after store query"},
		{"join", "from S join A on S.a == A.a within 0L, 1L per 'days'", "1:8", "joins are not supported"},
		{"select needs as", "from A within 0L, 1L per 'days' select total * 2", "1:40", "select expression needs 'as <name>'"},
		{"order by expression", "from A within 0L, 1L per 'days' order by f(x)", "1:42", "order by needs attribute names"},
		{"order without by", "from A within 0L, 1L per 'days' order x", "1:39", "expected 'by' after 'order', found 'x'"},
		{"lex error", "from A within 0L, 1L per 'days", "1:26", "unterminated string"},
	})
}
