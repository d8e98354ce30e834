package siddhiql

import (
	"maps"
	"slices"
	"testing"
)

const aggStream = "define stream S (sym string, price double, qty long, ts long);\n"

func aggOf(t *testing.T, src string) *AggregationDef {
	t.Helper()
	app := mustParse(t, aggStream+src)
	if len(app.Aggregations) != 1 {
		t.Fatalf("got %d aggregations", len(app.Aggregations))
	}
	return app.Aggregations[0]
}

func TestParse_AggregationSiddhiExample(t *testing.T) {
	a := aggOf(t, `@store(type='rdbms', jdbc.url="jdbc:mysql://localhost:3306/TestDB", username="root", password="root",
       jdbc.driver.name="com.mysql.jdbc.Driver")
@PartitionById(enable='true')
@purge(enable='true', interval='10 sec',
       @retentionPeriod(sec='120 sec', min='24 hours', hours='30 days', days='1 year', months='all', years='all'))
@info(name='TradeAgg')
define aggregation TradeAggregation
  from S
  select sym, avg(price) as avgPrice, sum(qty) as total
  group by sym
  aggregate by ts every sec ... year;`)
	if a.Name != "TradeAggregation" || a.From != "S" || a.AggregateBy != "ts" || !a.PartitionByID || a.Pos != (Pos{8, 1}) {
		t.Errorf("aggregation = %+v", a)
	}
	if a.Store == nil || a.Store.Elements[1].Key != "jdbc.url" || a.Store.Elements[4].Value != "com.mysql.jdbc.Driver" {
		t.Errorf("Store = %v", a.Store)
	}
	if !slices.Equal(a.Durations, AllDurations) {
		t.Errorf("Durations = %v", a.Durations)
	}
	if len(a.Select) != 3 || a.Select[1].OutputName() != "avgPrice" || a.Select[0].OutputName() != "sym" {
		t.Errorf("Select = %+v", a.Select)
	}
	if len(a.GroupBy) != 1 || a.GroupBy[0].Name != "sym" {
		t.Errorf("GroupBy = %+v", a.GroupBy)
	}
	want := &Purge{Enable: true, IntervalMillis: 10000, Retention: map[Duration]int64{
		Seconds: 120000, Minutes: 24 * 3600000, Hours: 30 * 86400000, Days: 365 * 86400000, Months: RetainAll, Years: RetainAll}}
	if a.Purge.Enable != want.Enable || a.Purge.IntervalMillis != want.IntervalMillis || !maps.Equal(a.Purge.Retention, want.Retention) {
		t.Errorf("Purge = %+v, want %+v", a.Purge, want)
	}
}

func TestParse_AggregationDurations(t *testing.T) {
	tests := []struct {
		every string
		want  []Duration
	}{
		{"sec ... year", AllDurations},
		{"SECONDS ... Years", AllDurations},
		{"min ... day", []Duration{Minutes, Hours, Days}},
		{"hour ... hours", []Duration{Hours}},
		{"sec", []Duration{Seconds}},
		{"day, min, hour, min", []Duration{Minutes, Hours, Days}},
		{"years, second, months", []Duration{Seconds, Months, Years}},
		{"minute, minutes, min", []Duration{Minutes}},
	}
	for _, tt := range tests {
		a := aggOf(t, "define aggregation A from S select sum(qty) as q aggregate every "+tt.every)
		if !slices.Equal(a.Durations, tt.want) {
			t.Errorf("every %s = %v, want %v", tt.every, a.Durations, tt.want)
		}
	}
}

func TestParse_AggregationForms(t *testing.T) {
	a := aggOf(t, "define aggregation A from S[price > 0][qty > 1] select S.sym, count() as n group by S.sym aggregate by S.ts every sec")
	if FormatExpr(a.Filter) != "((price > 0) and (qty > 1))" || a.AggregateBy != "ts" || a.GroupBy[0].Stream != "S" {
		t.Errorf("aggregation = %s", Dump(&App{Aggregations: []*AggregationDef{a}}))
	}
	a = aggOf(t, "@PartitionById(enable='FALSE') @info(name='x') define aggregation A from S select sum(qty) as q aggregate every sec")
	if a.PartitionByID || a.Store != nil || a.AggregateBy != "" || len(a.GroupBy) != 0 {
		t.Errorf("aggregation = %+v", a)
	}
}

func TestParse_Purge(t *testing.T) {
	const day = int64(86400000)
	tests := []struct {
		name, ann, every string
		want             Purge
	}{
		{"no annotation", "", "sec ... year", Purge{Enable: true, IntervalMillis: 15 * 60000, Retention: map[Duration]int64{
			Seconds: 120000, Minutes: day, Hours: 30 * day, Days: 365 * day, Months: RetainAll, Years: RetainAll}}},
		{"only own durations", "", "min, day", Purge{Enable: true, IntervalMillis: 900000, Retention: map[Duration]int64{
			Minutes: day, Days: 365 * day}}},
		{"bare purge", "@purge", "hour", Purge{Enable: true, IntervalMillis: 900000, Retention: map[Duration]int64{Hours: 30 * day}}},
		{"disabled", "@Purge(enable='false')", "sec", Purge{Enable: false, IntervalMillis: 900000, Retention: map[Duration]int64{Seconds: 120000}}},
		{"interval", "@purge(interval='1 min 30 sec')", "sec", Purge{Enable: true, IntervalMillis: 90000, Retention: map[Duration]int64{Seconds: 120000}}},
		{"minimums", "@purge(@retentionPeriod(sec='2 min', min='120 minutes', hours='25 hours', days='32 days', months='13 months', years='0 sec'))",
			"sec ... year", Purge{Enable: true, IntervalMillis: 900000, Retention: map[Duration]int64{
				Seconds: 120000, Minutes: 7200000, Hours: 25 * 3600000, Days: 32 * day, Months: 390 * day, Years: 0}}},
		{"key spellings", "@purge(@RetentionPeriod(SECONDS='all', minute='all', h='all', day='ALL', month='2 years', year=' all '))",
			"sec ... year", Purge{Enable: true, IntervalMillis: 900000, Retention: map[Duration]int64{
				Seconds: RetainAll, Minutes: RetainAll, Hours: RetainAll, Days: RetainAll, Months: 730 * day, Years: RetainAll}}},
		{"partial", "@purge(enable='true', interval='10 sec', @retentionPeriod(min='2 days'))", "sec, min", Purge{
			Enable: true, IntervalMillis: 10000, Retention: map[Duration]int64{Seconds: 120000, Minutes: 2 * day}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := aggOf(t, tt.ann+"\ndefine aggregation A from S select sum(qty) as q aggregate every "+tt.every)
			p := a.Purge
			if p == nil || p.Enable != tt.want.Enable || p.IntervalMillis != tt.want.IntervalMillis || !maps.Equal(p.Retention, tt.want.Retention) {
				t.Errorf("Purge = %+v, want %+v", p, tt.want)
			}
		})
	}
}

func TestParse_AggregationErrors(t *testing.T) {
	const def = "define aggregation A from S select sum(qty) as q aggregate every "
	// Line 2 is where the aggregation starts (line 1 is aggStream).
	runErrCases(t, func(src string) error { return parseApp(aggStream + src) }, []errCase{
		{"start after end", def + "hours ... seconds", "2:66", `aggregation durations go from "hours" to "seconds": the start must not be after the end`},
		{"week range", def + "sec ... week", "2:74", "week is not supported as an aggregation duration"},
		{"weeks list", def + "day, weeks", "2:71", "weeks is not supported as an aggregation duration"},
		{"unknown duration", def + "millisec", "2:66", `unknown aggregation duration "millisec"`},
		{"h is not a keyword", def + "h", "2:66", `unknown aggregation duration "h"`},
		{"missing every", "define aggregation A from S select sum(qty) as q aggregate", "2:59", "expected 'every' in aggregation A, found end of input"},
		{"missing aggregate", "define aggregation A from S select sum(qty) as q every sec", "2:50", "expected 'aggregate' in aggregation A, found 'every'"},
		{"select star", "define aggregation A from S select * aggregate every sec", "2:36", "select * is not allowed in aggregation A"},
		{"no select", "define aggregation A from S aggregate every sec", "2:29", "expected 'select' in aggregation A, found 'aggregate'"},
		{"window", "define aggregation A from S#window.time(1 min) select sum(qty) as q aggregate every sec", "2:28",
			"windows and stream functions are not allowed in the input of aggregation A"},
		{"having", "define aggregation A from S select sum(qty) as q having q > 1 aggregate every sec", "2:50", "having is not allowed in aggregation A"},
		{"needs as", "define aggregation A from S select sum(qty) aggregate every sec", "2:36", "select expression needs 'as <name>'"},
		{"duplicate output", "define aggregation A from S select sym, sum(qty) as sym aggregate every sec", "2:41", `duplicate output attribute "sym" in select (first at 2:36)`},
		{"aggregate by other stream", "define aggregation A from S select sum(qty) as q aggregate by T.ts every sec", "2:63", "T is not the input stream S"},
		{"aggregate by expression", "define aggregation A from S select sum(qty) as q aggregate by 5 every sec", "2:63", "expected an attribute after 'aggregate by', found '5'"},
		{"group by expression", "define aggregation A from S select sum(qty) as q group by sym + 1 aggregate every sec", "2:59", "group by needs attribute names, not expressions"},
		{"primary key", "@PrimaryKey('sym')\n" + def + "sec", "2:1", "@PrimaryKey is not allowed on aggregation A: Aggregation Tables have predefined primary key"},
		{"unknown annotation", "@BufferSize('3')\n" + def + "sec", "2:1", "annotation @BufferSize is not supported on aggregation A"},
		{"two stores", "@store(type='rdbms') @store(type='rdbms')\n" + def + "sec", "2:22", "aggregation A has more than one @store"},
		{"two purges", "@purge @purge\n" + def + "sec", "2:8", "aggregation A has more than one @purge"},
		{"partitionById value", "@PartitionById(enable='yes')\n" + def + "sec", "2:16", "@PartitionById enable must be 'true' or 'false', found 'yes'"},
		{"partitionById key", "@PartitionById(shard='1')\n" + def + "sec", "2:16", "@PartitionById takes only enable='true' or enable='false'"},
		{"purge enable", "@purge(enable='on')\n" + def + "sec", "2:8", "@purge enable must be 'true' or 'false', found 'on'"},
		{"purge interval", "@purge(interval='10')\n" + def + "sec", "2:8", "@purge interval '10': it has no time unit"},
		{"purge interval garbage", "@purge(interval='soon')\n" + def + "sec", "2:8", "@purge interval 'soon': it is not a time such as '10 sec'"},
		{"purge interval trailing", "@purge(interval='10 sec x')\n" + def + "sec", "2:8", "@purge interval '10 sec x': unexpected 'x' after the time"},
		{"purge interval zero", "@purge(interval='0 sec')\n" + def + "sec", "2:8", "@purge interval must be more than 0"},
		{"purge unknown", "@purge(every='1 min')\n" + def + "sec", "2:8", "unknown @purge element every"},
		{"purge positional", "@purge('true')\n" + def + "sec", "2:8", "found the value 'true' without a key"},
		{"purge duplicate", "@purge(enable='true', Enable='false')\n" + def + "sec", "2:23", "duplicate Enable in @purge"},
		{"purge nested", "@purge(@retention(sec='1 min'))\n" + def + "sec", "2:8", "@retention is not supported inside @purge"},
		{"two retention periods", "@purge(@retentionPeriod(sec='all'), @retentionPeriod(sec='all'))\n" + def + "sec", "2:37", "@purge has more than one @retentionPeriod"},
		{"retention unknown key", "@purge(@retentionPeriod(weeks='1 year'))\n" + def + "sec", "2:25", "unknown duration weeks in @retentionPeriod"},
		{"retention not computed", "@purge(@retentionPeriod(days='1 year'))\n" + def + "sec ... hour", "2:25", "@retentionPeriod sets days, but the aggregation has no DAYS duration"},
		{"retention duplicate", "@purge(@retentionPeriod(sec='all', seconds='all'))\n" + def + "sec", "2:36", "duplicate retention period for SECONDS"},
		{"retention bad value", "@purge(@retentionPeriod(sec='forever'))\n" + def + "sec", "2:25", "@retentionPeriod sec 'forever': it is not a time"},
		{"retention positional", "@purge(@retentionPeriod('1 min'))\n" + def + "sec", "2:25", "@retentionPeriod takes <duration>='<time>'"},
		{"min sec", "@purge(@retentionPeriod(sec='119 sec'))\n" + def + "sec", "2:25", "retention period sec='119 sec' is below the minimum of 120 sec for SECONDS"},
		{"min min", "@purge(@retentionPeriod(min='1 hour'))\n" + def + "min", "2:25", "retention period min='1 hour' is below the minimum of 120 min for MINUTES"},
		{"min hours", "@purge(@retentionPeriod(hours='1 day'))\n" + def + "hour", "2:25", "retention period hours='1 day' is below the minimum of 25 hours for HOURS"},
		{"min days", "@purge(@retentionPeriod(days='31 days'))\n" + def + "day", "2:25", "retention period days='31 days' is below the minimum of 32 days for DAYS"},
		{"min months", "@purge(@retentionPeriod(months='1 year'))\n" + def + "month", "2:25", "retention period months='1 year' is below the minimum of 13 months for MONTHS"},
		{"pattern input", "define aggregation A from every S select sum(qty) as q aggregate every sec", "2:27", "patterns ('every') are not supported"},
	})
}
