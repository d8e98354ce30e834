package store

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/siddhiql"
)

// wideApp groups by five strings without field.length: five VARCHAR(254) utf8mb4 columns
// (5080 bytes) cannot be a MySQL primary key, as in the API-M summary apps.
const wideApp = `define stream S (a string, b string, c string, d string, e string, v long);
define aggregation W from S select a, b, c, d, e, sum(v) as total group by a, b, c, d, e aggregate every sec ... min;`

// wideRow is a W SECONDS row of group g at index, every base set to x.
func wideRow(def *agg.Def, g [5]string, x int64, index uint64) *agg.Row {
	const sec = 1514782800000
	group := make([]expr.Value, len(g))
	for i, s := range g {
		group[i] = expr.String(s)
	}
	bases := make([]expr.Value, len(def.Bases))
	for i, b := range def.Bases {
		v, ok := expr.Convert(expr.Long(x), b.Type)
		if !ok {
			panic("base " + b.Name + " is not numeric")
		}
		bases[i] = v
	}
	return def.NewStoredRow(sec, sec, group, nil, math.MinInt64, bases, nil, index)
}

// mysqlColumns are table's column types and its primary key columns, in key order.
func mysqlColumns(t *testing.T, e *env, table string) (types map[string]string, nullable map[string]bool, pk []string) {
	t.Helper()
	types, nullable = map[string]string{}, map[string]bool{}
	rows, err := e.raw.Query("SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n, typ, null string
		if err := rows.Scan(&n, &typ, &null); err != nil {
			t.Fatal(err)
		}
		types[n], nullable[n] = typ, null == "YES"
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	pkRows, err := e.raw.Query("SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION", table)
	if err != nil {
		t.Fatal(err)
	}
	defer pkRows.Close()
	for pkRows.Next() {
		var n string
		if err := pkRows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		pk = append(pk, n)
	}
	if err := pkRows.Err(); err != nil {
		t.Fatal(err)
	}
	return types, nullable, pk
}

// TestWideGroupKey_Layout: on MySQL a group-by too wide for InnoDB's key gets a TALLY_KEY
// BINARY(32) column keying the table in its place; the group-by columns stay, VARCHAR(254)
// NOT NULL. SQLite keeps Siddhi's key.
func TestWideGroupKey_Layout(t *testing.T) {
	def := compile(t, wideApp, "W")
	backends(t, func(t *testing.T, e *env) {
		if err := e.st.CheckDef(def); err != nil {
			t.Fatalf("CheckDef: %v", err)
		}
		if err := e.st.Ensure(t.Context(), def); err != nil {
			t.Fatalf("Ensure: %v", err)
		}
		if err := e.st.Ensure(t.Context(), def); err != nil {
			t.Fatalf("Ensure again (the table it made is its own): %v", err)
		}
		if e.kind != "mysql" {
			var ddl string
			if err := e.raw.QueryRow("SELECT sql FROM sqlite_master WHERE name = 'W_SECONDS'").Scan(&ddl); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(ddl, colKey) || !strings.Contains(ddl, `PRIMARY KEY ("AGG_TIMESTAMP", "SHARD_ID", "a", "b", "c", "d", "e")`) {
				t.Errorf("SQLite table: %s, want Siddhi's key and no %s", ddl, colKey)
			}
			return
		}
		for _, table := range []string{"W_SECONDS", "W_MINUTES"} {
			types, nullable, pk := mysqlColumns(t, e, table)
			if want := []string{colAggTimestamp, colShardID, colKey}; !slicesEqualFold(pk, want) {
				t.Errorf("%s: primary key %v, want %v", table, pk, want)
			}
			if types[colKey] != "binary(32)" || nullable[colKey] {
				t.Errorf("%s: %s is %q (nullable %v), want binary(32) NOT NULL", table, colKey, types[colKey], nullable[colKey])
			}
			for _, g := range []string{"a", "b", "c", "d", "e"} {
				if types[g] != "varchar(254)" || nullable[g] {
					t.Errorf("%s: group-by column %s is %q (nullable %v), want varchar(254) NOT NULL", table, g, types[g], nullable[g])
				}
			}
		}
		// Event time: the event bucket stays in the key, before TALLY_KEY.
		ev := compile(t, `define stream S (a string, b string, c string, d string, e string, v long, ts long);
define aggregation EV from S select a, b, c, d, e, sum(v) as total group by a, b, c, d, e aggregate by ts every sec;`, "EV")
		if err := e.st.Ensure(t.Context(), ev); err != nil {
			t.Fatalf("event-time Ensure: %v", err)
		}
		if _, _, pk := mysqlColumns(t, e, "EV_SECONDS"); !slicesEqualFold(pk, []string{colAggTimestamp, colShardID, colEventTimestamp, colKey}) {
			t.Errorf("EV_SECONDS: primary key %v, want (AGG_TIMESTAMP, SHARD_ID, AGG_EVENT_TIMESTAMP, TALLY_KEY)", pk)
		}
	})
}

// TestWideGroupKey_UpsertRead: rows of a TALLY_KEY table are written, fenced by
// TALLY_INDEX through the new key (a lower or equal index changes nothing, a higher one
// replaces the row) and read back equal; groups differing in one value, even only by the
// value's boundary, are distinct rows.
func TestWideGroupKey_UpsertRead(t *testing.T) {
	def := compile(t, wideApp, "W")
	long := strings.Repeat("é", 254) // the full column, 508 bytes of UTF-8
	g1 := [5]string{long, "b", "c", "d", "e1"}
	g2 := [5]string{long, "b", "c", "d", "e2"}
	g3 := [5]string{long, "bc", "", "d", "e1"} // g1 with "c" moved to the end of "b"
	backends(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		if err := e.st.Ensure(ctx, def); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name   string
			write  []*agg.Row
			n      int
			stored []*agg.Row
		}{
			{"insert", []*agg.Row{wideRow(def, g1, 10, 10), wideRow(def, g2, 1, 10), wideRow(def, g3, 7, 10)}, 3,
				[]*agg.Row{wideRow(def, g1, 10, 10), wideRow(def, g2, 1, 10), wideRow(def, g3, 7, 10)}},
			{"lower index", []*agg.Row{wideRow(def, g1, 99, 5)}, 0,
				[]*agg.Row{wideRow(def, g1, 10, 10), wideRow(def, g2, 1, 10), wideRow(def, g3, 7, 10)}},
			{"equal index", []*agg.Row{wideRow(def, g1, 99, 10)}, 0,
				[]*agg.Row{wideRow(def, g1, 10, 10), wideRow(def, g2, 1, 10), wideRow(def, g3, 7, 10)}},
			{"higher index", []*agg.Row{wideRow(def, g1, 20, 11), wideRow(def, g2, 50, 9)}, 1,
				[]*agg.Row{wideRow(def, g1, 20, 11), wideRow(def, g2, 1, 10), wideRow(def, g3, 7, 10)}},
		}
		for _, s := range steps {
			n, err := e.st.Upsert(ctx, def, siddhiql.Seconds, "s1", s.write)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if n != s.n {
				t.Errorf("%s: upsert reported %d rows, want %d", s.name, n, s.n)
			}
			srs, err := e.st.Read(ctx, def, siddhiql.Seconds, math.MinInt64, math.MaxInt64)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			got := rowsOf(srs)
			if len(got) != len(s.stored) {
				t.Fatalf("%s: read %d rows, want %d", s.name, len(got), len(s.stored))
			}
			agg.SortRows(got)
			want := append([]*agg.Row(nil), s.stored...)
			agg.SortRows(want)
			for i := range want {
				if srs[i].Shard != "s1" {
					t.Errorf("%s: shard %q", s.name, srs[i].Shard)
				}
				if d := rowDiff(def, want[i], got[i]); d != "" {
					t.Errorf("%s: row %d: %s", s.name, i, d)
				}
			}
		}
		if e.kind != "mysql" {
			return
		}
		// Each row's TALLY_KEY is the hash of its own group-by values.
		l, err := e.st.(*sqlStore).layout(def, siddhiql.Seconds)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range [][5]string{g1, g2, g3} {
			h, err := l.groupHash(wideRow(def, g, 0, 0))
			if err != nil {
				t.Fatal(err)
			}
			var c string
			if err := e.raw.QueryRow("SELECT CONCAT(a, '|', b, '|', c, '|', d, '|', e) FROM W_SECONDS WHERE TALLY_KEY = ?", h).Scan(&c); err != nil {
				t.Fatalf("row of TALLY_KEY %x: %v", h, err)
			}
			if want := strings.Join(g[:], "|"); c != want {
				t.Errorf("TALLY_KEY %x holds group %q, want %q", h, c, want)
			}
		}
	})
}

// TestWideGroupKey_Refused: what TALLY_KEY cannot help is still refused before anything
// is created: an object group-by, a SHARD_ID too wide for the key on its own, and an
// existing table of the same aggregation without TALLY_KEY (it is not altered).
func TestWideGroupKey_Refused(t *testing.T) {
	e := newMySQLEnv(t)
	obj := compile(t, `define stream S (a string, o object, v long);
define aggregation O from S select a, o, sum(v) as total group by a, o aggregate every sec;`, "O")
	if err := e.st.CheckDef(obj); !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "group-by column o is an object") {
		t.Errorf("object group-by: err = %v, want ErrLimit naming column o", err)
	}
	shard := compile(t, strings.Replace(wideApp, "define aggregation", `@store(field.length="SHARD_ID:760")
define aggregation`, 1), "W")
	err := e.st.Ensure(t.Context(), shard)
	if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "primary key (AGG_TIMESTAMP, SHARD_ID, TALLY_KEY) takes up to 3080 bytes, more than the 3072") {
		t.Errorf("SHARD_ID:760: err = %v, want ErrLimit naming the TALLY_KEY key's 3080 bytes", err)
	}
	if e.tableExists(t, "W_SECONDS") {
		t.Error("a refused aggregation created a table")
	}

	const old = "CREATE TABLE W_SECONDS (AGG_TIMESTAMP BIGINT NOT NULL, SHARD_ID VARCHAR(254) NOT NULL, " +
		"a VARCHAR(100) NOT NULL, b VARCHAR(100) NOT NULL, c VARCHAR(100) NOT NULL, d VARCHAR(100) NOT NULL, e VARCHAR(100) NOT NULL, " +
		"AGG_SUM_v BIGINT, TALLY_INDEX BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (AGG_TIMESTAMP, SHARD_ID, a, b, c, d, e))"
	e.exec(t, old)
	err = e.st.Ensure(t.Context(), compile(t, wideApp, "W"))
	if !errors.Is(err, ErrIncompatibleTable) || !strings.Contains(err.Error(), "W_SECONDS") || !strings.Contains(err.Error(), "which this table lacks") {
		t.Errorf("existing table without TALLY_KEY: err = %v, want ErrIncompatibleTable naming W_SECONDS and TALLY_KEY", err)
	}
	if types, _, _ := mysqlColumns(t, e, "W_SECONDS"); types[colKey] != "" {
		t.Errorf("the existing table was altered: %v", types)
	}
}
