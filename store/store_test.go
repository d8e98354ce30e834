package store

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

type wantCol struct {
	name string
	typ  siddhiql.Type
	pk   int // 1-based position in the primary key, 0 outside it
}

// tableColumns reads a table's columns as (name, SiddhiQL type, pk position), mapping the
// backend's declared types back, so that one expectation serves both backends.
func tableColumns(t *testing.T, e *env, table string) []wantCol {
	t.Helper()
	var out []wantCol
	if e.kind == "sqlite" {
		rows, err := e.raw.Query("SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid", table)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var c wantCol
			var typ string
			if err := rows.Scan(&c.name, &typ, &c.pk); err != nil {
				t.Fatal(err)
			}
			c.typ = map[string]siddhiql.Type{"TEXT": siddhiql.TypeString, "INTEGER": siddhiql.TypeLong,
				"REAL": siddhiql.TypeDouble, "BLOB": siddhiql.TypeObject}[typ]
			out = append(out, c)
		}
		return out
	}
	rows, err := e.raw.Query(`SELECT c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, COALESCE(k.ORDINAL_POSITION, 0)
		FROM information_schema.COLUMNS c LEFT JOIN information_schema.KEY_COLUMN_USAGE k
		  ON k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME AND k.COLUMN_NAME = c.COLUMN_NAME AND k.CONSTRAINT_NAME = 'PRIMARY'
		WHERE c.TABLE_SCHEMA = DATABASE() AND c.TABLE_NAME = ? ORDER BY c.ORDINAL_POSITION`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var c wantCol
		var dataType, colType string
		if err := rows.Scan(&c.name, &dataType, &colType, &c.pk); err != nil {
			t.Fatal(err)
		}
		switch {
		case colType == "varchar(254)":
			c.typ = siddhiql.TypeString
		case dataType == "bigint":
			c.typ = siddhiql.TypeLong
		case dataType == "int":
			c.typ = siddhiql.TypeInt
		case dataType == "float":
			c.typ = siddhiql.TypeFloat
		case dataType == "double":
			c.typ = siddhiql.TypeDouble
		case colType == "tinyint(1)":
			c.typ = siddhiql.TypeBool
		case dataType == "blob":
			c.typ = siddhiql.TypeObject
		}
		out = append(out, c)
	}
	return out
}

// sqliteAffinity folds a type to what SQLite's table_info reports back.
func sqliteAffinity(t siddhiql.Type) siddhiql.Type {
	switch t {
	case siddhiql.TypeInt, siddhiql.TypeBool:
		return siddhiql.TypeLong
	case siddhiql.TypeFloat:
		return siddhiql.TypeDouble
	}
	return t
}

func TestEnsure_Layout(t *testing.T) {
	L, S, D, I, F, B, O := siddhiql.TypeLong, siddhiql.TypeString, siddhiql.TypeDouble, siddhiql.TypeInt, siddhiql.TypeFloat, siddhiql.TypeBool, siddhiql.TypeObject
	cases := []struct {
		app, agg string
		tables   []string
		absent   []string
		cols     []wantCol
		lastIdx  bool
	}{
		{tradeApp, "TradeAggregation",
			[]string{"TradeAggregation_SECONDS", "TradeAggregation_MINUTES", "TradeAggregation_HOURS", "TradeAggregation_DAYS", "TradeAggregation_MONTHS", "TradeAggregation_YEARS"},
			nil,
			// SIDDHI.md 3.1's CREATE TABLE for the seed, plus TALLY_INDEX.
			[]wantCol{{"AGG_TIMESTAMP", L, 1}, {"SHARD_ID", S, 2}, {"AGG_EVENT_TIMESTAMP", L, 3}, {"symbol", S, 4},
				{"AGG_SUM_price", D, 0}, {"AGG_COUNT", L, 0}, {"AGG_SUM_quantity", L, 0}, {"TALLY_INDEX", L, 0}},
			false},
		{mixedApp, "MixedAgg",
			[]string{"MixedAgg_SECONDS", "MixedAgg_MINUTES", "MixedAgg_HOURS"},
			[]string{"MixedAgg_DAYS", "MixedAgg_MONTHS", "MixedAgg_YEARS"},
			[]wantCol{{"AGG_TIMESTAMP", L, 1}, {"SHARD_ID", S, 2}, {"name", S, 3}, {"ok", B, 4},
				{"lastRegion", S, 0}, {"lastI", I, 0}, {"lastL", L, 0}, {"lastF", F, 0}, {"lastD", D, 0}, {"lastO", O, 0}, {"lastFlag", B, 0},
				{"AGG_LAST_EVENT_TIMESTAMP", L, 0},
				{"AGG_COUNT", L, 0}, {"AGG_SUM_i", L, 0}, {"AGG_SUM_f", D, 0}, {"AGG_SUM_d", D, 0}, {"AGG_MIN_i", I, 0}, {"AGG_MAX_l", L, 0},
				{"AGG_MIN_f", F, 0}, {"AGG_MAX_d", D, 0}, {"AGG_SET_region", O, 0}, {"TALLY_INDEX", L, 0}},
			true},
	}
	backends(t, func(t *testing.T, e *env) {
		for _, c := range cases {
			def := compile(t, c.app, c.agg)
			for range 2 { // idempotent
				if err := e.st.Ensure(t.Context(), def); err != nil {
					t.Fatal(err)
				}
			}
			for _, table := range c.tables {
				got := tableColumns(t, e, table)
				want := c.cols
				if e.kind == "sqlite" {
					want = nil
					for _, w := range c.cols {
						w.typ = sqliteAffinity(w.typ)
						want = append(want, w)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s columns\n got %v\nwant %v", table, got, want)
				}
				if has := hasLastEventIndex(t, e, table); has != c.lastIdx {
					t.Errorf("%s: index on AGG_LAST_EVENT_TIMESTAMP %v, want %v", table, has, c.lastIdx)
				}
			}
			for _, table := range c.absent {
				if e.tableExists(t, table) {
					t.Errorf("%s exists; the aggregation does not keep that granularity", table)
				}
			}
		}
	})
}

func hasLastEventIndex(t *testing.T, e *env, table string) bool {
	t.Helper()
	var query string
	if e.kind == "mysql" {
		query = "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'AGG_LAST_EVENT_TIMESTAMP' AND SEQ_IN_INDEX = 1"
	} else {
		query = "SELECT COUNT(*) FROM sqlite_master m, pragma_index_info(m.name) i WHERE m.type = 'index' AND m.tbl_name = ? AND i.name = 'AGG_LAST_EVENT_TIMESTAMP'"
	}
	var n int
	if err := e.raw.QueryRow(query, table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// mixedState is MixedAgg fed events covering every type, nulls, sets, groups that differ
// only in case, and non-ASCII text.
func mixedState(t *testing.T, def *agg.Def) *agg.State {
	s := newState(t, def)
	const t0 = 1514783400000
	add(t, s, 1, t0+500,
		reading("a", ptr("eu"), true, false, ptr[int32](3), ptr[int64](30), ptr[float32](1.5), ptr(2.25), ptr(`{"k":1}`)),
		reading("a", nil, true, true, ptr[int32](-2), ptr[int64](math.MaxInt64), ptr[float32](0.1), ptr(1e300), nil),
		reading("A", ptr("eu"), true, false, ptr[int32](math.MinInt32), ptr[int64](math.MinInt64), ptr[float32](-3.4e38), ptr(-0.1), ptr(`[]`)))
	add(t, s, 2, t0+1700,
		reading("Zürich ☃", ptr("ap-south"), false, true, ptr[int32](7), ptr[int64](-5), nil, nil, ptr(`"x"`)),
		reading("nulls", nil, false, false, nil, nil, nil, nil, nil),
		reading("a", ptr("us"), true, true, ptr[int32](1), ptr[int64](1), ptr[float32](2), ptr(3.0), nil))
	add(t, s, 3, t0+61_000, reading("a", ptr("eu"), false, false, ptr[int32](0), ptr[int64](0), ptr[float32](0), ptr(0.0), nil))
	return s
}

// tradeState is the seed aggregation with in-order and late events, so that one arrival
// bucket holds several event buckets.
func tradeState(t *testing.T, def *agg.Def) *agg.State {
	s := newState(t, def)
	const t0 = 1514783400000
	add(t, s, 1, t0, trade("wso2", 100, 10, t0), trade("ibm", 50.5, 3, t0-1000))
	add(t, s, 2, t0+3_600_000, trade("wso2", 101.25, 20, t0+3_600_000), trade("wso2", 99, 5, t0-86_400_000*40))
	add(t, s, 3, t0+3_600_500, trade("ibm", 0.1, 7, t0+3_600_400))
	return s
}

func TestUpsertRead_RoundTrip(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		for _, c := range []struct {
			def   *agg.Def
			state func(*testing.T, *agg.Def) *agg.State
		}{
			{compile(t, mixedApp, "MixedAgg"), mixedState},
			{compile(t, tradeApp, "TradeAggregation"), tradeState},
		} {
			def := c.def
			if err := e.st.Ensure(t.Context(), def); err != nil {
				t.Fatal(err)
			}
			s := c.state(t, def)
			for _, d := range def.Durations {
				want := s.Rows(d)
				n, err := e.st.Upsert(t.Context(), def, d, "shard-1", want)
				if err != nil {
					t.Fatal(err)
				}
				if n != len(want) {
					t.Errorf("%s %s: upsert wrote %d rows, want %d", def.Name, d, n, len(want))
				}
				got, err := e.st.Read(t.Context(), def, d, math.MinInt64, math.MaxInt64)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("%s %s: read %d rows, want %d", def.Name, d, len(got), len(want))
				}
				gotRows := rowsOf(got)
				agg.SortRows(gotRows)
				for i := range want {
					if got[i].Shard != "shard-1" {
						t.Errorf("shard %q", got[i].Shard)
					}
					if diff := rowDiff(def, want[i], gotRows[i]); diff != "" {
						t.Errorf("%s %s row %d (group %v): %s", def.Name, d, i, want[i].Group, diff)
					}
				}
			}
		}
	})
}

func TestSeed_TwoShards(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		def := compile(t, tradeApp, "TradeAggregation")
		if err := e.st.Ensure(t.Context(), def); err != nil {
			t.Fatal(err)
		}
		s1, s2 := newState(t, def), newState(t, def)
		const now = 1514786400000
		add(t, s1, 1, now, trade("wso2", 100, 10, 1514783400000), trade("wso2", 100, 20, 1514784000000))
		add(t, s2, 1, now, trade("wso2", 100, 10, 1514783400000), trade("wso2", 100, 30, 1514786399000))
		for range 2 { // writing twice leaves the totals alone
			for shard, s := range map[string]*agg.State{"wso2-si-1": s1, "wso2-si-2": s2} {
				for _, d := range def.Durations {
					if _, err := e.st.Upsert(t.Context(), def, d, shard, s.Rows(d)); err != nil {
						t.Fatal(err)
					}
				}
			}
			rows, err := e.raw.Query("SELECT SHARD_ID, AGG_SUM_quantity FROM TradeAggregation_HOURS ORDER BY SHARD_ID")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for rows.Next() {
				var shard string
				var sum int64
				if err := rows.Scan(&shard, &sum); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%s=%d", shard, sum))
			}
			rows.Close()
			if want := "[wso2-si-1=30 wso2-si-2=40]"; fmt.Sprint(got) != want {
				t.Fatalf("HOURS rows %v, want %s", got, want)
			}
		}
		srs, err := e.st.Read(t.Context(), def, siddhiql.Hours, 1514764800000, 1514851200000)
		if err != nil {
			t.Fatal(err)
		}
		if len(srs) != 2 || srs[0].Shard != "wso2-si-1" || srs[1].Shard != "wso2-si-2" {
			t.Fatalf("read %+v, want one row per shard", srs)
		}
		q, err := siddhiql.ParseStoreQuery(`from TradeAggregation within 1514764800000L, 1514851200000L per "hours" select AGG_TIMESTAMP, symbol, total, avgPrice`)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := agg.Prepare(def, q)
		if err != nil {
			t.Fatal(err)
		}
		res, err := plan.Run(rowsOf(srs))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(res.AppendJSON(nil, false)), `{"records":[[1514782800000,"wso2",70,100.0]]}`; got != want {
			t.Errorf("query answered %s, want %s", got, want)
		}
		// The external reader's SQL of doc.go gives the same total.
		var total int64
		if err := e.raw.QueryRow("SELECT SUM(AGG_SUM_quantity) FROM TradeAggregation_HOURS GROUP BY AGG_EVENT_TIMESTAMP, symbol").Scan(&total); err != nil || total != 70 {
			t.Errorf("SQL total %d, %v; want 70", total, err)
		}
	})
}

// fenceRow is a TradeAggregation HOURS row of symbol sym at index, with qty as its
// quantity and count and qty*10 as its price sum.
func fenceRow(def *agg.Def, sym string, qty int64, index uint64) *agg.Row {
	const hour = 1514782800000
	return def.NewStoredRow(hour, hour, []expr.Value{expr.String(sym)}, nil, math.MinInt64,
		[]expr.Value{expr.Double(float64(qty) * 10), expr.Long(qty), expr.Long(qty)}, nil, index)
}

// fenceScenario checks the fencing rule on shard's rows and describes the first violation.
func fenceScenario(t *testing.T, st Rollups, def *agg.Def, shard string) error {
	ctx := t.Context()
	upsert := func(want int, rows ...*agg.Row) error {
		n, err := st.Upsert(ctx, def, siddhiql.Hours, shard, rows)
		if err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("upsert reported %d rows, want %d", n, want)
		}
		return nil
	}
	check := func(step string, want ...*agg.Row) error {
		srs, err := st.Read(ctx, def, siddhiql.Hours, math.MinInt64, math.MaxInt64)
		if err != nil {
			return err
		}
		var got []*agg.Row
		for _, sr := range srs {
			if sr.Shard == shard {
				got = append(got, sr.Row)
			}
		}
		if len(got) != len(want) {
			return fmt.Errorf("%s: %d rows, want %d", step, len(got), len(want))
		}
		agg.SortRows(got)
		for i := range want {
			if d := rowDiff(def, want[i], got[i]); d != "" {
				return fmt.Errorf("%s: row %v: %s", step, want[i].Group, d)
			}
		}
		return nil
	}
	steps := []struct {
		name   string
		write  []*agg.Row
		n      int
		stored []*agg.Row
	}{
		{"insert", []*agg.Row{fenceRow(def, "a", 10, 10)}, 1, []*agg.Row{fenceRow(def, "a", 10, 10)}},
		{"lower index", []*agg.Row{fenceRow(def, "a", 99, 5)}, 0, []*agg.Row{fenceRow(def, "a", 10, 10)}},
		{"equal index", []*agg.Row{fenceRow(def, "a", 99, 10)}, 0, []*agg.Row{fenceRow(def, "a", 10, 10)}},
		// Every column must change here: with TALLY_INDEX assigned first, MySQL would
		// compare each later column against the index already raised and keep old values.
		{"higher index", []*agg.Row{fenceRow(def, "a", 20, 11)}, 1, []*agg.Row{fenceRow(def, "a", 20, 11)}},
		{"same rows again", []*agg.Row{fenceRow(def, "a", 20, 11)}, 0, []*agg.Row{fenceRow(def, "a", 20, 11)}},
		{"mixed batch", []*agg.Row{fenceRow(def, "a", 30, 12), fenceRow(def, "b", 1, 3)}, 2,
			[]*agg.Row{fenceRow(def, "a", 30, 12), fenceRow(def, "b", 1, 3)}},
		{"mixed stale batch", []*agg.Row{fenceRow(def, "a", 40, 13), fenceRow(def, "b", 2, 2), fenceRow(def, "c", 5, 1)}, 2,
			[]*agg.Row{fenceRow(def, "a", 40, 13), fenceRow(def, "b", 1, 3), fenceRow(def, "c", 5, 1)}},
	}
	for _, s := range steps {
		if err := upsert(s.n, s.write...); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if err := check(s.name, s.stored...); err != nil {
			return err
		}
	}
	return nil
}

func TestUpsert_Fence(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		def := compile(t, tradeApp, "TradeAggregation")
		if err := e.st.Ensure(t.Context(), def); err != nil {
			t.Fatal(err)
		}
		if err := fenceScenario(t, e.st, def, "s1"); err != nil {
			t.Fatal(err)
		}
		if e.kind != "mysql" {
			return
		}
		// The same scenario against the wrong assignment order must fail: the test above
		// would catch that bug.
		buggy, err := Open(t.Context(), e.dsn, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		defer buggy.Close()
		buggy.(*sqlStore).dia.(*mysqlDialect).indexFirst = true
		err = fenceScenario(t, buggy, def, "s2")
		if err == nil || !strings.Contains(err.Error(), "higher index") {
			t.Fatalf("TALLY_INDEX assigned first: scenario gave %v, want a failure at the higher index step", err)
		}
		t.Logf("the wrong order is caught: %v", err)
	})
}

func TestUpsert_Batches(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		def := compile(t, tradeApp, "TradeAggregation")
		if err := e.st.Ensure(t.Context(), def); err != nil {
			t.Fatal(err)
		}
		const n = 1203 // three batches, the last partial
		rows := make([]*agg.Row, n)
		for i := range rows {
			rows[i] = fenceRow(def, fmt.Sprintf("sym%04d", i), int64(i), 5)
		}
		if got, err := e.st.Upsert(t.Context(), def, siddhiql.Hours, "s1", rows); err != nil || got != n {
			t.Fatalf("upsert: %d, %v; want %d", got, err, n)
		}
		// Every other row newer: only those change.
		for i := range rows {
			rows[i] = fenceRow(def, fmt.Sprintf("sym%04d", i), int64(i)+1, uint64(4+2*(i%2)))
		}
		if got, err := e.st.Upsert(t.Context(), def, siddhiql.Hours, "s1", rows); err != nil || got != n/2 {
			t.Fatalf("second upsert: %d, %v; want %d", got, err, n/2)
		}
		var sum int64
		if err := e.raw.QueryRow("SELECT SUM(AGG_SUM_quantity) FROM TradeAggregation_HOURS").Scan(&sum); err != nil {
			t.Fatal(err)
		}
		if want := int64(n*(n-1)/2 + n/2); sum != want {
			t.Errorf("sum %d, want %d", sum, want)
		}
		srs, err := e.st.Read(t.Context(), def, siddhiql.Hours, math.MinInt64, math.MaxInt64)
		if err != nil || len(srs) != n {
			t.Fatalf("read %d rows, %v; want %d", len(srs), err, n)
		}
	})
}

func TestPurge_OwnShardOnly(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		def := compile(t, tradeApp, "TradeAggregation")
		if err := e.st.Ensure(t.Context(), def); err != nil {
			t.Fatal(err)
		}
		row := func(ts int64, sym string) *agg.Row {
			// Event-time mode: the bucket time is AGG_EVENT_TIMESTAMP, here one hour after
			// the arrival bucket, so purging on AGG_TIMESTAMP would be caught.
			return def.NewStoredRow(ts, ts+3_600_000, []expr.Value{expr.String(sym)}, nil, math.MinInt64,
				[]expr.Value{expr.Double(1), expr.Long(1), expr.Long(1)}, nil, 1)
		}
		for _, shard := range []string{"s1", "s2"} {
			rows := []*agg.Row{row(0, "a"), row(3_600_000, "a"), row(7_200_000, "a"), row(7_200_000, "b")}
			if _, err := e.st.Upsert(t.Context(), def, siddhiql.Hours, shard, rows); err != nil {
				t.Fatal(err)
			}
		}
		// Bucket times 1 h, 2 h, 3 h, 3 h: a cutoff of 3 h purges the first two.
		n, err := e.st.Purge(t.Context(), def, siddhiql.Hours, "s1", 3*3_600_000)
		if err != nil || n != 2 {
			t.Fatalf("purge: %d, %v; want 2", n, err)
		}
		srs, err := e.st.Read(t.Context(), def, siddhiql.Hours, math.MinInt64, math.MaxInt64)
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, sr := range srs {
			count[sr.Shard]++
			if sr.Shard == "s1" && sr.Row.EventTimestamp < 3*3_600_000 {
				t.Errorf("s1 row at %d survived", sr.Row.EventTimestamp)
			}
		}
		if count["s1"] != 2 || count["s2"] != 4 {
			t.Errorf("rows left per shard %v, want s1:2 s2:4", count)
		}
	})
}

func TestRead_Window(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		def := compile(t, mixedApp, "MixedAgg")
		if err := e.st.Ensure(t.Context(), def); err != nil {
			t.Fatal(err)
		}
		s := mixedState(t, def)
		if _, err := e.st.Upsert(t.Context(), def, siddhiql.Seconds, "s1", s.Rows(siddhiql.Seconds)); err != nil {
			t.Fatal(err)
		}
		// Arrival-time mode: the window is on AGG_TIMESTAMP, start inclusive, end exclusive.
		const t0 = 1514783400000
		for _, c := range []struct {
			start, end int64
			want       int
		}{{t0, t0 + 1000, 2}, {t0, t0 + 1001, 5}, {t0 + 1000, t0 + 2000, 3}, {t0 + 1, t0 + 1000, 0}, {t0, t0 + 120_000, 6}} {
			srs, err := e.st.Read(t.Context(), def, siddhiql.Seconds, c.start, c.end)
			if err != nil {
				t.Fatal(err)
			}
			if len(srs) != c.want {
				t.Errorf("[%d, %d): %d rows, want %d", c.start-t0, c.end-t0, len(srs), c.want)
			}
		}
	})
}

// siddhiTables are TradeAggregation_HOURS as Siddhi creates it without and with
// partitioning, both without TALLY_INDEX.
const (
	siddhiUnpartitioned = `CREATE TABLE TradeAggregation_HOURS (AGG_TIMESTAMP BIGINT, AGG_EVENT_TIMESTAMP BIGINT,
  symbol VARCHAR(254), AGG_SUM_price DOUBLE, AGG_COUNT BIGINT, AGG_SUM_quantity BIGINT,
  PRIMARY KEY (AGG_TIMESTAMP, AGG_EVENT_TIMESTAMP, symbol))`
	siddhiPartitioned = `CREATE TABLE TradeAggregation_HOURS (AGG_TIMESTAMP BIGINT, SHARD_ID VARCHAR(254), AGG_EVENT_TIMESTAMP BIGINT,
  symbol VARCHAR(254), AGG_SUM_price DOUBLE, AGG_COUNT BIGINT, AGG_SUM_quantity BIGINT,
  PRIMARY KEY (AGG_TIMESTAMP, SHARD_ID, AGG_EVENT_TIMESTAMP, symbol))`
)

func TestEnsure_RefusesSiddhiTables(t *testing.T) {
	for _, c := range []struct {
		name, ddl, insert, mention, shard string
	}{
		{"unpartitioned", siddhiUnpartitioned,
			"INSERT INTO TradeAggregation_HOURS VALUES (1514782800000, 1514782800000, 'wso2', 3000, 30, 30)", "lacks SHARD_ID", legacyShard},
		{"no TALLY_INDEX", siddhiPartitioned,
			"INSERT INTO TradeAggregation_HOURS VALUES (1514782800000, 'node-1', 1514782800000, 'wso2', 3000, 30, 30)", "lacks TALLY_INDEX", "node-1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			backends(t, func(t *testing.T, e *env) {
				def := compile(t, tradeApp, "TradeAggregation")
				e.exec(t, c.ddl)
				e.exec(t, c.insert)
				err := e.st.Ensure(t.Context(), def)
				if !errors.Is(err, ErrIncompatibleTable) {
					t.Fatalf("Ensure: %v, want ErrIncompatibleTable", err)
				}
				msg := err.Error()
				t.Logf("%s", msg)
				_, migration, ok := strings.Cut(msg, "Migrate it with: ")
				if !strings.Contains(msg, c.mention) || !ok || !strings.Contains(migration, "TALLY_INDEX") {
					t.Fatalf("message %q should say %q and give the migration", msg, c.mention)
				}
				// Nothing written: no other table created, the old one untouched.
				if e.tableExists(t, "TradeAggregation_SECONDS") {
					t.Error("Ensure created TradeAggregation_SECONDS while refusing HOURS")
				}
				if n := e.count(t, "TradeAggregation_HOURS"); n != 1 {
					t.Errorf("old table has %d rows", n)
				}
				// The migration works as printed, and the old row reads back.
				for _, stmt := range strings.Split(migration, "; ") {
					e.exec(t, stmt)
				}
				if err := e.st.Ensure(t.Context(), def); err != nil {
					t.Fatalf("Ensure after the migration: %v", err)
				}
				srs, err := e.st.Read(t.Context(), def, siddhiql.Hours, 0, math.MaxInt64)
				if err != nil {
					t.Fatal(err)
				}
				if len(srs) != 1 || srs[0].Shard != c.shard || srs[0].Row.Index != 0 || srs[0].Row.Bases[2].I != 30 {
					t.Fatalf("after migration read %+v", srs)
				}
				if _, err := e.st.Upsert(t.Context(), def, siddhiql.Hours, c.shard, []*agg.Row{fenceRow(def, "wso2", 31, 1)}); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// TestMissingTables: before the first flush creates them, reading or purging an
// aggregation's tables finds nothing rather than failing a query.
func TestMissingTables(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		def := compile(t, mixedApp, "MixedAgg")
		srs, err := e.st.Read(t.Context(), def, siddhiql.Seconds, 0, 1<<62)
		if err != nil || len(srs) != 0 {
			t.Errorf("Read of a missing table = %d rows, %v; want none, nil", len(srs), err)
		}
		if n, err := e.st.Purge(t.Context(), def, siddhiql.Seconds, "s1", 1<<62); err != nil || n != 0 {
			t.Errorf("Purge of a missing table = %d, %v; want 0, nil", n, err)
		}
	})
}
