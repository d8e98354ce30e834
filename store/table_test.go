package store

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/engine/table"
	"github.com/tally-db/tally/siddhiql"
)

var _ Tables = (*sqlStore)(nil)

// storeDef parses one `define table` and returns its store layout.
func storeDef(t *testing.T, text string) *table.StoreDef {
	t.Helper()
	a, err := siddhiql.Parse("@app:name('A')\ndefine stream S (x string);\n" + text)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := table.ParseStore(a.Tables[0])
	if err != nil || sd == nil {
		t.Fatalf("store def: %v %v", sd, err)
	}
	sd.App = "A"
	return sd
}

const pricesTable = `@store(type='rdbms', field.length='symbol:20')
@primaryKey('symbol') @index('venue')
define table Prices (symbol string, venue string, price double, qty long, n int, ratio float, ok bool);`

func price(sym, venue string, p float64, qty int64) expr.Row {
	return expr.Row{expr.String(sym), expr.String(venue), expr.Double(p), expr.Long(qty), expr.Int(int32(qty)), expr.Float(0.5), expr.Bool(qty%2 == 0)}
}

func tables(t *testing.T, e *env) Tables {
	t.Helper()
	ts, ok := e.st.(Tables)
	if !ok {
		t.Fatal("the store does not implement Tables")
	}
	return ts
}

// sqlRows reads every row of a table ordered by its first columns, each as "a|b|c".
func (e *env) sqlRows(t *testing.T, tbl string, order string) []string {
	t.Helper()
	rows, err := e.raw.Query("SELECT * FROM " + e.q(tbl) + " ORDER BY " + order)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			parts[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func write(t *testing.T, ts Tables, sd *table.StoreDef, shard string, index uint64, c table.Changes) table.Written {
	t.Helper()
	w, err := ts.WriteTable(t.Context(), sd, shard, index, &c)
	if err != nil {
		t.Fatalf("write at %d: %v", index, err)
	}
	return w
}

func TestTable_LayoutAndWrites(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ts := tables(t, e)
		sd := storeDef(t, pricesTable)
		if err := ts.EnsureTable(t.Context(), sd); err != nil {
			t.Fatal(err)
		}
		if err := ts.EnsureTable(t.Context(), sd); err != nil {
			t.Fatalf("second ensure: %v", err)
		}
		var got []string
		for _, c := range tableColumns(t, e, "Prices") {
			got = append(got, fmt.Sprintf("%s:%d", c.name, c.pk))
		}
		if strings.Join(got, " ") != "symbol:1 venue:0 price:0 qty:0 n:0 ratio:0 ok:0" {
			t.Fatalf("columns = %v", got)
		}
		if e.kind == "mysql" {
			var types []string
			rows, err := e.raw.Query("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'Prices' ORDER BY ORDINAL_POSITION")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var s string
				rows.Scan(&s)
				types = append(types, s)
			}
			rows.Close()
			if strings.Join(types, " ") != "varchar(20) varchar(254) double bigint(20) int(11) float tinyint(1)" {
				t.Errorf("MySQL types = %v", types)
			}
		}
		if !e.indexExists(t, "Prices", "Prices_INDEX") {
			t.Error("no index over @index('venue')")
		}
		w := write(t, ts, sd, "g0", 5, table.Changes{Rows: []expr.Row{price("a", "x", 1, 1), price("b", "y", 2, 2), price("c", "x", 3, 3)}})
		if !w.Applied || w.Rows != 3 {
			t.Fatalf("first write = %+v", w)
		}
		w = write(t, ts, sd, "g0", 8, table.Changes{Rows: []expr.Row{price("b", "z", 2.5, 4)}, Deleted: []expr.Row{{expr.String("a")}, {expr.String("gone")}}})
		if !w.Applied || w.Rows != 2 {
			t.Fatalf("second write = %+v, want 2 rows (b inserted, a deleted)", w)
		}
		want := []string{"b|z|2.5|4|4|0.5|1", "c|x|3|3|3|0.5|0"}
		if got := e.sqlRows(t, "Prices", "symbol"); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("rows = %q, want %q", got, want)
		}
		if got := e.sqlRows(t, FenceTable, "SHARD_ID"); len(got) != 1 || got[0] != "Prices|A|g0|8" {
			t.Fatalf("fence = %q", got)
		}
	})
}

func (e *env) indexExists(t *testing.T, tbl, name string) bool {
	t.Helper()
	var query string
	if e.kind == "mysql" {
		query = "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME = ?"
	} else {
		query = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name = ?"
	}
	var n int
	if err := e.raw.QueryRow(query, tbl, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestTable_Fence: a write at an index the fence has passed changes nothing; another
// shard has its own fence.
func TestTable_Fence(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ts := tables(t, e)
		sd := storeDef(t, pricesTable)
		if err := ts.EnsureTable(t.Context(), sd); err != nil {
			t.Fatal(err)
		}
		write(t, ts, sd, "g0", 10, table.Changes{Rows: []expr.Row{price("a", "new", 10, 10)}})
		for _, index := range []uint64{9, 10} { // a deposed leader, and a retry of the same
			w := write(t, ts, sd, "g0", index, table.Changes{Replace: true, Rows: []expr.Row{price("a", "old", 1, 1), price("z", "old", 1, 1)}})
			if w.Applied || w.Rows != 0 || w.Fence != 10 {
				t.Errorf("write at %d after 10 = %+v, want nothing applied", index, w)
			}
		}
		if got := e.sqlRows(t, "Prices", "symbol"); len(got) != 1 || !strings.HasPrefix(got[0], "a|new|10|") {
			t.Fatalf("rows after stale writes = %q", got)
		}
		if w := write(t, ts, sd, "g1", 3, table.Changes{Rows: []expr.Row{price("b", "g1", 1, 1)}}); !w.Applied {
			t.Error("another shard's first write was fenced by g0's index")
		}
		if w := write(t, ts, sd, "g0", 11, table.Changes{Deleted: []expr.Row{{expr.String("a")}}}); !w.Applied || w.Rows != 1 {
			t.Errorf("write at 11 = %+v", w)
		}
		if got := e.sqlRows(t, "Prices", "symbol"); len(got) != 1 || !strings.HasPrefix(got[0], "b|g1|") {
			t.Fatalf("rows = %q", got)
		}
	})
}

// TestTable_Replace: a table without a primary key is replaced whole; equal rows stay
// distinct rows.
func TestTable_Replace(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ts := tables(t, e)
		sd := storeDef(t, "@store(type='rdbms')\ndefine table Log (venue string, qty long);")
		if err := ts.EnsureTable(t.Context(), sd); err != nil {
			t.Fatal(err)
		}
		row := func(v string, q int64) expr.Row { return expr.Row{expr.String(v), expr.Long(q)} }
		write(t, ts, sd, "g0", 1, table.Changes{Replace: true, Rows: []expr.Row{row("x", 1), row("x", 1), row("y", 2)}})
		if got := e.sqlRows(t, "Log", "venue"); strings.Join(got, " ") != "x|1 x|1 y|2" {
			t.Fatalf("rows = %q", got)
		}
		w := write(t, ts, sd, "g0", 2, table.Changes{Replace: true, Rows: []expr.Row{row("z", 3)}})
		if got := e.sqlRows(t, "Log", "venue"); strings.Join(got, " ") != "z|3" || w.Rows != 4 {
			t.Fatalf("rows = %q, written %d (3 deleted, 1 inserted)", got, w.Rows)
		}
		if w := write(t, ts, sd, "g0", 3, table.Changes{Replace: true}); !w.Applied || e.count(t, "Log") != 0 {
			t.Fatalf("replacing with an empty table: %+v, %d rows left", w, e.count(t, "Log"))
		}
	})
}

// TestTable_Skipped: rows the SQL table cannot hold are skipped, not retried forever, and
// a keyed row that became unwritable is deleted rather than left stale.
func TestTable_Skipped(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ts := tables(t, e)
		sd := storeDef(t, pricesTable)
		if err := ts.EnsureTable(t.Context(), sd); err != nil {
			t.Fatal(err)
		}
		write(t, ts, sd, "g0", 1, table.Changes{Rows: []expr.Row{price("a", "x", 1, 1), price("b", "x", 1, 1)}})
		long := price("a", strings.Repeat("v", 255), 1, 1)
		nullKey := price("", "x", 1, 1)
		nullKey[0] = expr.Null
		nan := price("n", "x", math.NaN(), 1)
		w := write(t, ts, sd, "g0", 2, table.Changes{Rows: []expr.Row{long, nullKey, price(strings.Repeat("s", 21), "x", 1, 1), nan}})
		if !w.Applied || w.Skipped != 4 {
			t.Fatalf("write = %+v, want 4 skipped", w)
		}
		if got := e.sqlRows(t, "Prices", "symbol"); len(got) != 1 || !strings.HasPrefix(got[0], "b|") {
			t.Fatalf("rows = %q, want only b (a could not be written as it is now)", got)
		}
	})
}

// TestTable_Incompatible: an existing table of the same name with other columns or
// another key is refused with a clear error, and its rows are left as they were.
func TestTable_Incompatible(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ts := tables(t, e)
		sd := storeDef(t, pricesTable)
		e.exec(t, "CREATE TABLE "+e.q("Prices")+" (symbol VARCHAR(20) NOT NULL PRIMARY KEY, cost DOUBLE)")
		e.exec(t, "INSERT INTO "+e.q("Prices")+" VALUES ('keep', 1.5)")
		err := ts.EnsureTable(t.Context(), sd)
		if !errors.Is(err, ErrIncompatibleTable) || !strings.Contains(err.Error(), "lacks the columns venue, price, qty, n, ratio, ok of table Prices") {
			t.Fatalf("err = %v", err)
		}
		if got := e.sqlRows(t, "Prices", "symbol"); len(got) != 1 || got[0] != "keep|1.5" {
			t.Fatalf("rows = %q", got)
		}
		e.exec(t, "DROP TABLE "+e.q("Prices"))
		e.exec(t, "CREATE TABLE "+e.q("Prices")+" (symbol VARCHAR(20) NOT NULL PRIMARY KEY, venue VARCHAR(254), price DOUBLE, qty BIGINT, n INTEGER, ratio FLOAT, ok BOOLEAN, owner VARCHAR(10) NOT NULL)")
		err = ts.EnsureTable(t.Context(), sd)
		if !errors.Is(err, ErrIncompatibleTable) || !strings.Contains(err.Error(), "it has columns owner, which table Prices does not") {
			t.Fatalf("extra column: err = %v", err)
		}
		e.exec(t, "DROP TABLE "+e.q("Prices"))
		e.exec(t, "CREATE TABLE "+e.q("Prices")+" (symbol VARCHAR(20), venue VARCHAR(254), price DOUBLE, qty BIGINT, n INTEGER, ratio FLOAT, ok BOOLEAN)")
		err = ts.EnsureTable(t.Context(), sd)
		if !errors.Is(err, ErrIncompatibleTable) || !strings.Contains(err.Error(), "its primary key is (), the table's @primaryKey is (symbol)") {
			t.Fatalf("err = %v", err)
		}
		if e.kind == "mysql" {
			e.exec(t, "DROP TABLE "+e.q("Prices"))
			e.exec(t, "CREATE TABLE "+e.q("Prices")+" (symbol VARCHAR(10) NOT NULL PRIMARY KEY, venue VARCHAR(254), price DOUBLE, qty BIGINT, n INTEGER, ratio FLOAT, ok BOOLEAN)")
			err = ts.EnsureTable(t.Context(), sd)
			if !errors.Is(err, ErrIncompatibleTable) || !strings.Contains(err.Error(), "Widen them with: ALTER TABLE `Prices` MODIFY `symbol` VARCHAR(20) NOT NULL") {
				t.Fatalf("narrow column: err = %v", err)
			}
		}
	})
}

// TestTable_CaseInsensitiveKey: an existing table whose collation equates keys Tally keeps
// apart (a Siddhi table comparing strings ignoring case) takes the later row instead of
// failing every flush.
func TestTable_CaseInsensitiveKey(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ts := tables(t, e)
		sd := storeDef(t, "@store(type='rdbms')\n@primaryKey('k')\ndefine table CI (k string, v long);")
		if e.kind == "mysql" {
			e.exec(t, "CREATE TABLE CI (k VARCHAR(254) NOT NULL PRIMARY KEY, v BIGINT) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
		} else {
			e.exec(t, `CREATE TABLE "CI" (k TEXT COLLATE NOCASE NOT NULL PRIMARY KEY, v INTEGER)`)
		}
		if err := ts.EnsureTable(t.Context(), sd); err != nil {
			t.Fatal(err)
		}
		w := write(t, ts, sd, "g0", 1, table.Changes{Rows: []expr.Row{{expr.String("a"), expr.Long(1)}, {expr.String("A"), expr.Long(2)}}})
		if !w.Applied {
			t.Fatalf("write = %+v", w)
		}
		if got := e.sqlRows(t, "CI", "k"); len(got) != 1 || !strings.HasSuffix(got[0], "|2") {
			t.Fatalf("rows = %q, want the later of the two", got)
		}
	})
}

func TestCheckTable_Limits(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ts := tables(t, e)
		lengths, attrs := make([]string, 20), make([]string, 20)
		for i := range lengths {
			lengths[i], attrs[i] = fmt.Sprintf("c%d:900", i), fmt.Sprintf("c%d string", i)
		}
		wide := storeDef(t, "@store(type='rdbms', field.length='"+strings.Join(lengths, ", ")+"')\ndefine table W ("+strings.Join(attrs, ", ")+");")
		err := ts.CheckTable(wide)
		if e.kind == "sqlite" {
			if err != nil {
				t.Errorf("sqlite refused a wide row: %v", err)
			}
		} else if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "a row takes up to 72000 bytes, more than the 65535 MySQL allows") {
			t.Errorf("err = %v", err)
		}
		long := storeDef(t, "@store(type='rdbms', table.name='"+strings.Repeat("x", 65)+"')\ndefine table L (a string);")
		if err := ts.CheckTable(long); !errors.Is(err, ErrLimit) {
			t.Errorf("a 65-character table name: err = %v", err)
		}
	})
}

// TestTable_WideKey: a primary key too wide for MySQL (four VARCHAR(254) in utf8mb4, as
// API-M's alert configuration tables have) gets an index over key prefixes instead of a
// PRIMARY KEY there, and writes as any keyed table; SQLite keeps the key.
func TestTable_WideKey(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ts := tables(t, e)
		sd := storeDef(t, `@store(type = 'rdbms', datasource = 'APIM_ANALYTICS_DB')
@PrimaryKey('apiName', 'apiVersion','apiCreator', 'apiCreatorTenantDomain') @Index('apiName', 'apiVersion', 'apiCreator', 'thresholdResponseTime')
define table ApiCreatorAlertConfiguration (apiName string, apiVersion string, apiCreator string, apiCreatorTenantDomain string, thresholdResponseTime long, thresholdBackendTime long);`)
		if err := ts.EnsureTable(t.Context(), sd); err != nil {
			t.Fatal(err)
		}
		if err := ts.EnsureTable(t.Context(), sd); err != nil {
			t.Fatalf("second ensure: %v", err)
		}
		pk := 0
		for _, c := range tableColumns(t, e, "ApiCreatorAlertConfiguration") {
			if c.pk > 0 {
				pk++
			}
		}
		if e.kind == "mysql" {
			if pk != 0 || !e.indexExists(t, "ApiCreatorAlertConfiguration", "ApiCreatorAlertConfiguration_KEY") || !e.indexExists(t, "ApiCreatorAlertConfiguration", "ApiCreatorAlertConfiguration_INDEX") {
				t.Fatalf("MySQL: %d primary key columns, want none and the prefix indexes", pk)
			}
		} else if pk != 4 {
			t.Fatalf("SQLite: %d primary key columns, want 4", pk)
		}
		r := func(api string, th int64) expr.Row {
			return expr.Row{expr.String(api), expr.String("1.0"), expr.String(strings.Repeat("c", 254)), expr.String("carbon.super"), expr.Long(th), expr.Long(0)}
		}
		write(t, ts, sd, "g0", 1, table.Changes{Rows: []expr.Row{r("a", 1), r("b", 2)}})
		write(t, ts, sd, "g0", 2, table.Changes{Rows: []expr.Row{r("a", 10)}, Deleted: []expr.Row{r("b", 0)[:4]}})
		var got []string
		for _, row := range e.sqlRows(t, "ApiCreatorAlertConfiguration", "apiName") {
			got = append(got, strings.ReplaceAll(row, strings.Repeat("c", 254), "C"))
		}
		if strings.Join(got, " ") != "a|1.0|C|carbon.super|10|0" {
			t.Fatalf("rows = %q", got)
		}
	})
}

// TestTable_SharedByApps: apps that define one SQL table each write their own rows, fenced
// apart: the same index admits both.
func TestTable_SharedByApps(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ts := tables(t, e)
		a, b := storeDef(t, pricesTable), storeDef(t, pricesTable)
		b.App = "B"
		if err := ts.EnsureTable(t.Context(), a); err != nil {
			t.Fatal(err)
		}
		if err := ts.EnsureTable(t.Context(), b); err != nil {
			t.Fatal(err)
		}
		if w := write(t, ts, a, "g0", 7, table.Changes{Rows: []expr.Row{price("a", "x", 1, 1)}}); !w.Applied {
			t.Fatal("app A's write was not applied")
		}
		if w := write(t, ts, b, "g0", 7, table.Changes{Rows: []expr.Row{price("b", "x", 1, 1)}}); !w.Applied {
			t.Fatal("app B's write at the same index was fenced by app A's")
		}
		if got := e.sqlRows(t, "Prices", "symbol"); len(got) != 2 {
			t.Fatalf("rows = %q", got)
		}
	})
}

// TestTable_ConcurrentWriters: writers racing on one table (a deposed leader and its
// successor, or a retry) leave the rows of the greatest index, whatever the order.
func TestTable_ConcurrentWriters(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		ts := tables(t, e)
		sd := storeDef(t, "@store(type='rdbms')\n@primaryKey('k')\ndefine table C (k string, v long);")
		if err := ts.EnsureTable(t.Context(), sd); err != nil {
			t.Fatal(err)
		}
		const writers = 12
		errs := make(chan error, writers)
		for i := range writers {
			go func() {
				index := uint64(i + 1)
				c := table.Changes{Replace: true, Rows: []expr.Row{{expr.String("k"), expr.Long(int64(index))}, {expr.String(fmt.Sprint("only", index)), expr.Long(0)}}}
				_, err := ts.WriteTable(t.Context(), sd, "g0", index, &c)
				errs <- err
			}()
		}
		for range writers {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if got := e.sqlRows(t, "C", "k"); strings.Join(got, " ") != fmt.Sprintf("k|%d only%d|0", writers, writers) {
			t.Fatalf("rows = %q, want those of index %d", got, writers)
		}
	})
}

// BenchmarkWriteTable: one flush of 10,000 changed rows of a keyed table (each already in
// the SQL table, so deleted and inserted again), per backend.
func BenchmarkWriteTable(b *testing.B) {
	for _, kind := range []string{"sqlite", "mysql"} {
		b.Run(kind, func(b *testing.B) {
			dsn := "sqlite://" + b.TempDir() + "/s.db"
			if kind == "mysql" {
				var err error
				if dsn, err = mariadb.CreateDatabase(b.Context(), fmt.Sprintf("bench%d", dbSeq.Add(1))); err != nil {
					b.Fatal(err)
				}
			}
			st, err := Open(b.Context(), dsn, quietLogger())
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			ts := st.(Tables)
			sd := &table.StoreDef{Table: "P", App: "A", PrimaryKey: []int{0}, Columns: []table.StoreColumn{
				{Name: "k", Type: siddhiql.TypeString, Length: 254}, {Name: "v", Type: siddhiql.TypeLong}, {Name: "d", Type: siddhiql.TypeDouble}}}
			if err := ts.EnsureTable(b.Context(), sd); err != nil {
				b.Fatal(err)
			}
			rows := make([]expr.Row, 10000)
			for i := range rows {
				rows[i] = expr.Row{expr.String(fmt.Sprintf("key%06d", i)), expr.Long(int64(i)), expr.Double(float64(i) / 3)}
			}
			b.ResetTimer()
			for i := range b.N {
				c := table.Changes{Rows: rows}
				if _, err := ts.WriteTable(b.Context(), sd, "g0", uint64(i+1), &c); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(rows)), "µs/row")
		})
	}
}
