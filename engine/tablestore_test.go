package engine

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/engine/table"
)

// storeTablesApp mirrors two tables over the determinism workload's Trades stream: one
// keyed by symbol (inserts, updates, deletes) and one without a key, plus an in-memory
// table that must track nothing.
const storeTablesApp = `@app:name('Stored')
define stream Trades (symbol string, price double, qty long, ts long, venue string);
@store(type='rdbms', jdbc.url='jdbc:mysql://db/apim', field.length='symbol:20, venue:30')
@primaryKey('symbol') @index('qty')
define table Last (symbol string, price double, qty long);
@store(type='rdbms')
define table Venues (venue string, qty long);
define table Mem (symbol string);
from Trades[qty >= 2] select symbol, price, qty
  update or insert into Last set Last.price = price, Last.qty = Last.qty + qty on Last.symbol == symbol;
from Trades[qty < 2] select symbol delete Last on Last.symbol == symbol;
from Trades[qty > 12] select venue, qty insert into Venues;
from Trades[qty == 3] select venue delete Venues on Venues.venue == venue;
from Trades select symbol insert into Mem;
`

func storeTable(t *testing.T, e *Engine, name string) *table.Table {
	t.Helper()
	a, ok := e.App("Stored")
	if !ok {
		t.Fatal("app Stored not deployed")
	}
	tb, ok := a.Table(name)
	if !ok {
		t.Fatalf("no table %s", name)
	}
	return tb
}

func longRow(vs ...any) expr.Row {
	var r expr.Row
	for _, v := range vs {
		switch v := v.(type) {
		case string:
			r = append(r, expr.String(v))
		case float64:
			r = append(r, expr.Double(v))
		case int:
			r = append(r, expr.Long(int64(v)))
		}
	}
	return r
}

func dumpChanges(c table.Changes) string {
	var b strings.Builder
	fmt.Fprintf(&b, "replace=%v index=%d", c.Replace, c.Index)
	for _, r := range c.Rows {
		fmt.Fprintf(&b, " +%v", r)
	}
	for _, r := range c.Deleted {
		fmt.Fprintf(&b, " -%v", r)
	}
	return b.String()
}

func TestStoreTables_Layout(t *testing.T) {
	e := newEngine(t, "", storeTablesApp)
	a, _ := e.App("Stored")
	var names []string
	for _, tb := range a.StoreTables() {
		names = append(names, tb.Name())
	}
	if got := strings.Join(names, ","); got != "Last,Venues" {
		t.Fatalf("store tables = %s, want Last,Venues (Mem is in memory only)", got)
	}
	sd := storeTable(t, e, "Last").Store()
	if sd.Table != "Last" || len(sd.Columns) != 3 || sd.Columns[0].Length != 20 || sd.Columns[1].Length != 0 ||
		fmt.Sprint(sd.PrimaryKey) != "[0]" || fmt.Sprint(sd.Indexes) != "[2]" {
		t.Errorf("layout of Last = %+v", sd)
	}
	if l := storeTable(t, e, "Venues").Store().Columns[0].Length; l != table.DefaultStringLength {
		t.Errorf("venue length = %d, want the default %d", l, table.DefaultStringLength)
	}
}

func TestStoreTables_BadOptions(t *testing.T) {
	for _, tc := range []struct{ store, want string }{
		{`field.length='symbol'`, "3:22: field.length \"symbol\": each item must be attribute:length"},
		{`field.length='symbol:0'`, "field.length of symbol must be a whole number from 1 to 16383"},
		{`field.length='symbol:9, SYMBOL:8'`, "field.length names SYMBOL twice"},
		{`table.name='my table'`, "table.name \"my table\" of table T must be a plain name"},
	} {
		e, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		text := "@app:name('A')\ndefine stream S (symbol string);\n@store(type='rdbms', " + tc.store + ")\ndefine table T (symbol string);\n"
		_, err = e.Deploy(text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.store, err, tc.want)
		}
	}
}

// TestStoreTables_Conflicts: two writers of one SQL table are refused at deploy, whichever
// comes second.
func TestStoreTables_Conflicts(t *testing.T) {
	table := func(app, name, opts string) string {
		return "@app:name('" + app + "')\ndefine stream S" + app + " (symbol string, price double);\n@store(type='rdbms'" + opts + ")\ndefine table " + name + " (symbol string);\n"
	}
	aggApp := "@app:name('Agg')\ndefine stream Trades (symbol string, price double);\n" +
		"define aggregation Sales from Trades select symbol, sum(price) as total group by symbol aggregate every sec ... min;\n"
	for _, tc := range []struct {
		name        string
		first, then string
		want        string
	}{
		{"other layout", table("A", "Prices", ""), table("B", "PRICES", ", field.length='symbol:10'"), "table PRICES lays out the SQL table PRICES otherwise than table Prices of app A does"},
		{"same app", table("A", "Prices", "") + "@store(type='rdbms', table.name='prices')\ndefine table Other (symbol string);\n", "", "tables Prices and Other of app A would both write the SQL table prices"},
		{"aggregation table", aggApp, table("B", "Sales_MINUTES", ""), "table Sales_MINUTES would write the SQL table Sales_MINUTES of aggregation Sales of app Agg"},
		{"aggregation after", table("B", "Sales_SECONDS", ""), aggApp, "aggregation Sales would write the SQL table Sales_SECONDS of table Sales_SECONDS of app B"},
		{"fence", table("A", "tally_table_fence", ""), "", "TALLY_TABLE_FENCE is the store's own table of fences"},
	} {
		e, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Deploy(tc.first)
		if tc.then != "" {
			if err != nil {
				t.Fatalf("%s: first deploy: %v", tc.name, err)
			}
			_, err = e.Deploy(tc.then)
		}
		if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrConflict with %q", tc.name, err, tc.want)
		}
	}
	// An in-memory table may share a name with anything, and apps may share a SQL table
	// they lay out alike (as Siddhi apps sharing a database table do).
	e := newEngine(t, "", aggApp)
	if _, err := e.Deploy("@app:name('M')\ndefine stream M (symbol string);\ndefine table Sales_MINUTES (symbol string);\n"); err != nil {
		t.Errorf("an in-memory table was refused: %v", err)
	}
	for _, app := range []string{table("A", "Prices", ""), table("B", "PRICES", ""), table("C", "Other", ", table.name='prices'")} {
		if _, err := e.Deploy(app); err != nil {
			t.Errorf("a shared SQL table with the same layout was refused: %v", err)
		}
	}
}

// TestStoreTables_Changes: a keyed store table hands out the rows changed and the keys
// deleted since the last flush, each change with its index; a flushed index clears only
// what changed at or before it.
func TestStoreTables_Changes(t *testing.T) {
	e := newEngine(t, "", storeTablesApp)
	last := storeTable(t, e, "Last")
	apply := func(index uint64, rows ...expr.Row) {
		t.Helper()
		if _, err := e.Apply(index, int64(index)*1000, "Trades", rows); err != nil {
			t.Fatal(err)
		}
	}
	if c := last.Changes(); !c.Empty() {
		t.Fatalf("fresh table has changes: %s", dumpChanges(c))
	}
	apply(3, longRow("a", 1.0, 5, 0, "x"), longRow("b", 2.0, 5, 0, "x"), longRow("c", 3.0, 5, 0, "x"))
	apply(4, longRow("b", 2.5, 4, 0, "x"))
	if got, want := dumpChanges(last.Changes()), `replace=false index=4 +["a" 1.0 5] +["b" 2.5 9] +["c" 3.0 5]`; got != want {
		t.Fatalf("changes = %s, want %s", got, want)
	}
	e.DropFlushed(3) // a flush through index 3: b changed after it
	if got, want := dumpChanges(last.Changes()), `replace=false index=4 +["b" 2.5 9]`; got != want {
		t.Fatalf("after flush 3: %s, want %s", got, want)
	}
	apply(5, longRow("a", 0.0, 1, 0, "x")) // deletes a
	if got, want := dumpChanges(last.Changes()), `replace=false index=5 +["b" 2.5 9] -["a"]`; got != want {
		t.Fatalf("after delete: %s, want %s", got, want)
	}
	// An on-demand update that changes the key: the old key is deleted, the new one written.
	if err := e.TableWrite(6, 6000, "Stored", `update Last set Last.symbol = 'z' on Last.symbol == 'c'`); err != nil {
		t.Fatal(err)
	}
	if got, want := dumpChanges(last.Changes()), `replace=false index=6 +["b" 2.5 9] +["z" 3.0 5] -["a"] -["c"]`; got != want {
		t.Fatalf("after key change: %s, want %s", got, want)
	}
	e.DropFlushed(6)
	if c := last.Changes(); !c.Empty() {
		t.Fatalf("after flush 6: %s", dumpChanges(c))
	}
	// The in-memory table tracks nothing.
	if c := storeTable(t, e, "Mem").Changes(); !c.Empty() || storeTable(t, e, "Mem").Len() == 0 {
		t.Errorf("in-memory table: %d rows, changes %s", storeTable(t, e, "Mem").Len(), dumpChanges(c))
	}
}

// TestStoreTables_Keyless: a table without a primary key is written whole, and clearing
// waits for a flush at or after its latest change.
func TestStoreTables_Keyless(t *testing.T) {
	e := newEngine(t, "", storeTablesApp)
	v := storeTable(t, e, "Venues")
	for i, row := range []expr.Row{longRow("s", 1.0, 20, 0, "x"), longRow("s", 1.0, 30, 0, "y"), longRow("s", 1.0, 20, 0, "x")} {
		if _, err := e.Apply(uint64(10+i), 1000, "Trades", []expr.Row{row}); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := dumpChanges(v.Changes()), `replace=true index=12 +["x" 20] +["y" 30] +["x" 20]`; got != want {
		t.Fatalf("changes = %s, want %s", got, want)
	}
	e.DropFlushed(11)
	if !v.Changes().Replace {
		t.Fatal("a flush before the latest change cleared the table's changes")
	}
	if _, err := e.Apply(13, 1000, "Trades", []expr.Row{longRow("s", 1.0, 3, 0, "x")}); err != nil {
		t.Fatal(err)
	}
	if got, want := dumpChanges(v.Changes()), `replace=true index=13 +["y" 30]`; got != want {
		t.Fatalf("after delete: %s, want %s", got, want)
	}
	e.DropFlushed(13)
	if c := v.Changes(); !c.Empty() {
		t.Fatalf("after flush 13: %s", dumpChanges(c))
	}
}

// TestStoreTables_TombstonesBounded: deleting many keys while nothing is flushed turns the
// keyed table to a whole-table write instead of growing without bound.
func TestStoreTables_TombstonesBounded(t *testing.T) {
	e := newEngine(t, "", storeTablesApp)
	last := storeTable(t, e, "Last")
	index := uint64(1)
	for i := range 5000 {
		sym := fmt.Sprintf("s%d", i)
		if _, err := e.Apply(index, 1000, "Trades", []expr.Row{longRow(sym, 1.0, 5, 0, "x"), longRow(sym, 1.0, 1, 0, "x")}); err != nil {
			t.Fatal(err)
		}
		index++
	}
	c := last.Changes()
	if !c.Replace || len(c.Rows) != 0 || c.Index != index-1 {
		t.Fatalf("after 5000 inserted and deleted keys: replace=%v rows=%d index=%d", c.Replace, len(c.Rows), c.Index)
	}
	e.DropFlushed(index - 1)
	if _, err := e.Apply(index, 1000, "Trades", []expr.Row{longRow("k", 1.0, 5, 0, "x")}); err != nil {
		t.Fatal(err)
	}
	if got, want := dumpChanges(last.Changes()), fmt.Sprintf(`replace=false index=%d +["k" 1.0 5]`, index); got != want {
		t.Fatalf("after the flush: %s, want %s (keys tracked again)", got, want)
	}
}

// storeRun feeds steps to e and, like a flusher, drops what was flushed now and then.
func storeRun(t *testing.T, e *Engine, steps []step) {
	t.Helper()
	for i, s := range steps {
		if s.tick {
			e.Tick(s.index, s.now)
		} else if _, err := e.Apply(s.index, s.now, "Trades", s.rows); err != nil {
			t.Fatalf("step %d: %v", s.index, err)
		}
		if s.index%23 == 0 {
			e.DropFlushed(steps[max(0, i-5)].index)
		}
	}
}

func storeDump(t *testing.T, e *Engine) string {
	t.Helper()
	return dumpChanges(storeTable(t, e, "Last").Changes()) + "\n" + dumpChanges(storeTable(t, e, "Venues").Changes())
}

// TestDeterminism_StoreTables: same calls, same encoding and change sets; restoring at any
// cut and continuing equals never stopping.
func TestDeterminism_StoreTables(t *testing.T) {
	steps := workload(11, 400)
	a, b := newEngine(t, "", storeTablesApp), newEngine(t, "", storeTablesApp)
	storeRun(t, a, steps)
	storeRun(t, b, steps)
	want, wantChanges := encode(t, a), storeDump(t, a)
	if !bytes.Equal(want, encode(t, b)) || wantChanges != storeDump(t, b) {
		t.Fatal("same calls gave different encodings or changes")
	}
	if !strings.Contains(wantChanges, "-[") || !strings.Contains(wantChanges, "replace=true") {
		t.Fatalf("the workload left no deleted keys or no keyless changes: it tests little:\n%s", wantChanges)
	}
	for _, cut := range []int{1, 97, 230, 399} {
		first := newEngine(t, "", storeTablesApp)
		storeRun(t, first, steps[:cut])
		second, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := second.UnmarshalBinary(encode(t, first)); err != nil {
			t.Fatalf("cut %d: restore: %v", cut, err)
		}
		if got := storeDump(t, second); got != storeDump(t, first) {
			t.Fatalf("cut %d: restored changes differ:\n%s\nwant\n%s", cut, got, storeDump(t, first))
		}
		storeRun(t, second, steps[cut:])
		if !bytes.Equal(encode(t, second), want) || storeDump(t, second) != wantChanges {
			t.Fatalf("cut %d: restore and continue differs from never stopping", cut)
		}
	}
}

// BenchmarkStoreTableUpsert: the keyed upsert of BenchmarkTableUpsertJoin, held in memory
// and mirrored (@store(type='rdbms')), to show what change tracking costs an event.
func BenchmarkStoreTableUpsert(b *testing.B) {
	for _, store := range []string{"", "@store(type='rdbms')\n"} {
		b.Run(fmt.Sprintf("store=%t", store != ""), func(b *testing.B) {
			app := `@app:name('B')
define stream Req (user string, ip string);
` + store + `@PrimaryKey('user', 'ip')
define table Counts (user string, ip string, n long);
from Req select user, ip, 1L as n update or insert into Counts set Counts.n = Counts.n + n on Counts.user == user and Counts.ip == ip;
`
			e, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.Deploy(app); err != nil {
				b.Fatal(err)
			}
			rows := make([]expr.Row, 10000)
			for i := range rows {
				rows[i] = expr.Row{expr.String(fmt.Sprintf("user%d", i)), expr.String("10.0.0.1")}
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := e.Apply(uint64(i+1), int64(i), "Req", rows[i%len(rows):i%len(rows)+1]); err != nil {
					b.Fatal(err)
				}
				if i%1000 == 999 { // a flush a second at 1,000 events a second
					e.DropFlushed(uint64(i + 1))
				}
			}
		})
	}
}

// TestStateCompat_StoreTables: the encoding of store tables with their changes (table
// encoding 2, testdata) still decodes, re-encodes to the same bytes and hands out the same
// changes; -update-state rewrites it.
func TestStateCompat_StoreTables(t *testing.T) {
	e := newEngine(t, "", storeTablesApp)
	storeRun(t, e, workload(3, 160))
	got, dump := encode(t, e), storeDump(t, e)
	path := filepath.Join("testdata", "state-tables-v2.golden")
	changesPath := filepath.Join("testdata", "state-tables-v2-changes.golden")
	if *updateState {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(changesPath, []byte(dump), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wantChanges, err := os.ReadFile(changesPath)
	if err != nil {
		t.Fatal(err)
	}
	wantDump := string(wantChanges)
	if !bytes.Equal(got, want) || dump != wantDump {
		t.Fatalf("the workload's state or changes differ from %s and %s", path, changesPath)
	}
	restored, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := restored.UnmarshalBinary(want); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	if !bytes.Equal(encode(t, restored), want) || storeDump(t, restored) != wantDump {
		t.Error("decoding the golden state and encoding it again changed it")
	}
}
