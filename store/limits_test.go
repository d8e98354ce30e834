package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-db/tally/siddhiql"
)

// TestCheckDef_NameLimits: an aggregation whose table names the store cannot hold (the
// finding: a name so long that <Agg>_SECONDS passes 64 characters) is refused with ErrLimit
// naming the limit, by CheckDef and by Ensure, before anything is created.
func TestCheckDef_NameLimits(t *testing.T) {
	name55 := strings.Repeat("a", 56) // the longest that fits: 56 + len("_SECONDS") = 64
	name56 := strings.Repeat("a", 57)
	app := func(agg, col string) string {
		return "define stream S (" + col + " string, v long);\ndefine aggregation " + agg +
			" from S select " + col + ", sum(v) as total group by " + col + " aggregate every sec ... min;"
	}
	backends(t, func(t *testing.T, e *env) {
		ok := compile(t, app(name55, "k"), name55)
		if err := e.st.CheckDef(ok); err != nil {
			t.Fatalf("56-character name: %v", err)
		}
		if err := e.st.Ensure(t.Context(), ok); err != nil {
			t.Fatalf("ensure 56-character name: %v", err)
		}
		long := compile(t, app(name56, "k"), name56)
		for what, err := range map[string]error{"CheckDef": e.st.CheckDef(long), "Ensure": e.st.Ensure(t.Context(), long)} {
			if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "more than the 64") || !strings.Contains(err.Error(), "at most 56") {
				t.Errorf("%s of a 57-character name: err = %v, want ErrLimit naming 64 and 56", what, err)
			}
		}
		if e.tableExists(t, name56+"_SECONDS") || e.tableExists(t, name56[:50]) {
			t.Error("a refused aggregation created a table")
		}
		col := strings.Repeat("c", 65)
		err := e.st.CheckDef(compile(t, app("A", col), "A"))
		if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "column name "+col+" is 65 characters, more than the 64") {
			t.Errorf("65-character column: err = %v", err)
		}
	})
}

// TestFieldLength_DDL: field.length sets the VARCHAR length of group-by, latest-value and
// SHARD_ID columns on MySQL; without it string columns are VARCHAR(254). Group-by columns
// wider than InnoDB's 3072-byte key are keyed by TALLY_KEY instead; a key that fits is Siddhi's.
func TestFieldLength_DDL(t *testing.T) {
	const app = `define stream S (k string, r string, v long);
@store(type='rdbms', field.length="k:40, last:7, SHARD_ID:30")
define aggregation A from S select k, r as last, r as other, sum(v) as total group by k aggregate every sec;`
	e := newMySQLEnv(t)
	def := compile(t, app, "A")
	if err := e.st.Ensure(t.Context(), def); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	rows, err := e.raw.Query("SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'A_SECONDS'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n, typ string
		if err := rows.Scan(&n, &typ); err != nil {
			t.Fatal(err)
		}
		got[n] = typ
	}
	for col, want := range map[string]string{"k": "varchar(40)", "last": "varchar(7)", "other": "varchar(254)", "SHARD_ID": "varchar(30)"} {
		if got[col] != want {
			t.Errorf("column %s is %q, want %s (all: %v)", col, got[col], want, got)
		}
	}
	// field.length raised after the table was made: refused with the SQL that widens it.
	wider := compile(t, strings.Replace(app, "k:40, last:7", "k:60, last:9", 1), "A")
	err = e.st.Ensure(t.Context(), wider)
	const alter = "ALTER TABLE `A_SECONDS` MODIFY `k` VARCHAR(60) NOT NULL, MODIFY `last` VARCHAR(9)"
	if !errors.Is(err, ErrIncompatibleTable) || !strings.Contains(err.Error(), alter) {
		t.Fatalf("wider field.length on an existing table: err = %v, want ErrIncompatibleTable with %s", err, alter)
	}
	e.exec(t, alter)
	if err := e.st.Ensure(t.Context(), wider); err != nil {
		t.Fatalf("after widening: %v", err)
	}
	if err := e.st.Ensure(t.Context(), def); err != nil {
		t.Errorf("a narrower field.length than the table's is fine: %v", err)
	}
	// The shard ID must fit its column.
	if _, err := e.st.Upsert(t.Context(), def, siddhiql.Seconds, strings.Repeat("s", 31), nil); !errors.Is(err, ErrLimit) {
		t.Errorf("31-character shard ID into SHARD_ID:30: err = %v, want ErrLimit", err)
	}

	wide := compile(t, `define stream S (a string, b string, c string, v long);
define aggregation W from S select a, b, c, sum(v) as total group by a, b, c aggregate every sec;`, "W")
	if err := e.st.Ensure(t.Context(), wide); err != nil {
		t.Fatalf("three VARCHAR(254) key columns: %v", err)
	}
	if _, _, pk := mysqlColumns(t, e, "W_SECONDS"); !slicesEqualFold(pk, []string{colAggTimestamp, colShardID, colKey}) {
		t.Errorf("three VARCHAR(254) key columns: primary key %v, want (AGG_TIMESTAMP, SHARD_ID, TALLY_KEY)", pk)
	}
	// The check agrees with the server: a key of exactly 3072 bytes (8 + 4·254 + 4·512) is
	// created, and keeps Siddhi's layout.
	narrow := compile(t, `define stream S (a string, b string, c string, v long);
@store(field.length="a:170, b:171, c:171")
define aggregation N from S select a, b, c, sum(v) as total group by a, b, c aggregate every sec;`, "N")
	if err := e.st.Ensure(t.Context(), narrow); err != nil {
		t.Errorf("narrowed key: %v", err)
	}
	if types, _, pk := mysqlColumns(t, e, "N_SECONDS"); types[colKey] != "" || !slicesEqualFold(pk, []string{colAggTimestamp, colShardID, "a", "b", "c"}) {
		t.Errorf("a key of 3072 bytes: primary key %v (columns %v), want Siddhi's and no TALLY_KEY", pk, types)
	}
	sq := newSQLiteEnv(t, t.TempDir()+"/rollups.db")
	if err := sq.st.CheckDef(wide); err != nil {
		t.Errorf("SQLite has no key limit: %v", err)
	}
}

// TestSQLiteFileMode: the SQLite store file is created 0600, and an existing readable one
// is tightened on open.
func TestSQLiteFileMode(t *testing.T) {
	dir := t.TempDir()
	fresh := filepath.Join(dir, "fresh.db")
	old := filepath.Join(dir, "old.db")
	if err := os.WriteFile(old, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(old, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fresh, old} {
		e := newSQLiteEnv(t, p)
		if err := e.st.Ensure(t.Context(), compile(t, tradeApp, "TradeAggregation")); err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s is %#o, want 0600", filepath.Base(p), info.Mode().Perm())
		}
	}
	wal, _ := filepath.Glob(filepath.Join(dir, "*-wal"))
	for _, w := range wal {
		if info, err := os.Stat(w); err == nil && info.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %#o", w, info.Mode().Perm())
		}
	}
}
