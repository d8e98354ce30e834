package table

import (
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

func def(pk ...string) *siddhiql.TableDef {
	return &siddhiql.TableDef{Name: "T", PrimaryKey: pk, Attributes: []siddhiql.Attribute{
		{Name: "k", Type: siddhiql.TypeString}, {Name: "v", Type: siddhiql.TypeLong}}}
}

func row(k string, v int64) expr.Row { return expr.Row{expr.String(k), expr.Long(v)} }

func dump(t *Table) string {
	var b strings.Builder
	for _, r := range t.Rows() {
		b.WriteString(r[0].S)
		b.WriteString("=")
		b.WriteString(r[1].String())
		b.WriteString(" ")
	}
	return b.String()
}

func TestInsert_PrimaryKeyDropsDuplicates(t *testing.T) {
	tb := New(def("k"))
	if !tb.Insert(row("a", 1)) || !tb.Insert(row("b", 2)) {
		t.Fatal("a new key was refused")
	}
	if tb.Insert(row("a", 3)) {
		t.Error("a duplicate key was inserted")
	}
	if got := dump(tb); got != "a=1 b=2 " {
		t.Errorf("rows = %q", got)
	}
	plain := New(def())
	plain.Insert(row("a", 1))
	plain.Insert(row("a", 1))
	if plain.Len() != 2 {
		t.Errorf("a table without a primary key holds %d rows, want 2", plain.Len())
	}
}

func TestInsert_CopiesTheRow(t *testing.T) {
	tb := New(def())
	r := row("a", 1)
	tb.Insert(r)
	r[1] = expr.Long(99)
	if got := dump(tb); got != "a=1 " {
		t.Errorf("changing the caller's row changed the table: %q", got)
	}
}

func TestDeleteThenInsertSameKey(t *testing.T) {
	tb := New(def("k"))
	for _, k := range []string{"a", "b", "c"} {
		tb.Insert(row(k, 1))
	}
	if n := tb.Delete(func(r expr.Row) bool { return r[0].S == "a" }); n != 1 {
		t.Fatalf("deleted %d rows, want 1", n)
	}
	if !tb.Insert(row("a", 5)) {
		t.Fatal("a deleted key could not be inserted again")
	}
	if tb.Insert(row("c", 5)) {
		t.Error("the index lost key c after a delete")
	}
	if got := dump(tb); got != "b=1 c=1 a=5 " {
		t.Errorf("rows = %q", got)
	}
}

func TestUpdate_KeyCollisionKeepsRow(t *testing.T) {
	tb := New(def("k"))
	tb.Insert(row("a", 1))
	tb.Insert(row("b", 2))
	n := tb.Update(func(r expr.Row) bool { return r[0].S == "a" }, func(expr.Row) expr.Row { return row("b", 9) })
	if n != 0 {
		t.Errorf("update onto an existing key changed %d rows", n)
	}
	n = tb.Update(func(r expr.Row) bool { return r[0].S == "a" }, func(expr.Row) expr.Row { return row("z", 9) })
	if n != 1 || dump(tb) != "z=9 b=2 " {
		t.Errorf("rekey: n=%d rows=%q", n, dump(tb))
	}
	if tb.Insert(row("z", 0)) || !tb.Insert(row("a", 0)) {
		t.Error("the index does not follow a changed key")
	}
}

func TestEncodeDecode(t *testing.T) {
	tb := New(def("k"))
	tb.Insert(row("b", 2))
	tb.Insert(expr.Row{expr.String("a"), expr.Null})
	var w wire.Writer
	tb.Encode(&w)
	back := New(def("k"))
	if err := back.Decode(wire.NewReader(w.Buf)); err != nil {
		t.Fatal(err)
	}
	if dump(back) != dump(tb) {
		t.Errorf("decoded %q, want %q", dump(back), dump(tb))
	}
	if back.Insert(row("b", 0)) {
		t.Error("the decoded table lost its key index")
	}
	for n := range len(w.Buf) {
		if err := New(def("k")).Decode(wire.NewReader(w.Buf[:n])); err == nil {
			t.Errorf("decoded a state cut to %d of %d bytes", n, len(w.Buf))
		}
	}
	var dup wire.Writer
	twice := New(def())
	twice.Insert(row("a", 1))
	twice.Insert(row("a", 1))
	twice.Encode(&dup)
	if err := New(def("k")).Decode(wire.NewReader(dup.Buf)); err == nil {
		t.Error("decoded duplicate primary keys")
	}
}

func TestPair(t *testing.T) {
	p := &Pair{
		Left:  Side{Names: []string{"S", "s"}, Attrs: []siddhiql.Attribute{{Name: "k", Type: siddhiql.TypeString}, {Name: "x", Type: siddhiql.TypeLong}}},
		Right: Side{Names: []string{"T"}, Attrs: def().Attributes},
		What:  "join",
	}
	for _, c := range []struct{ src, err string }{
		{"s.k == T.k and x > v", ""},
		{"k == 'a'", `attribute "k" is in both S and T`},
		{"U.k == 'a'", `unknown stream or table "U"`},
		{"T.x > 1", `T has no attribute "x"`},
		{"nope > 1", `unknown attribute "nope"`},
		{"x + 1", "needs a bool condition, got long"},
	} {
		e, err := siddhiql.ParseExpr(c.src)
		if err != nil {
			t.Fatal(err)
		}
		_, err = CompileCond(e, p)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: error %v, want %q", c.src, err, c.err)
		}
	}
	e, _ := siddhiql.ParseExpr("s.k == T.k and x > v")
	cond, _ := CompileCond(e, p)
	left := expr.Row{expr.String("a"), expr.Long(5)}
	if !cond.Holds(left, row("a", 4)) || cond.Holds(left, row("a", 5)) || cond.Holds(left, row("b", 1)) {
		t.Error("condition evaluated wrongly")
	}
	p.PreferLeft = true
	e, _ = siddhiql.ParseExpr("k == 'a'")
	if cond, err := CompileCond(e, p); err != nil || !cond.Holds(left, row("b", 0)) {
		t.Errorf("PreferLeft: unqualified k should read the left side (err %v)", err)
	}
}
