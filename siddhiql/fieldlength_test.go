package siddhiql

import (
	"slices"
	"testing"
)

func TestParse_StoreFieldLength(t *testing.T) {
	a := aggOf(t, `@store(type='rdbms', field.length="sym:100, SHARD_ID : 20,last:5")
define aggregation A from S select sym, sum(qty) as q group by sym aggregate every sec;`)
	want := []FieldLength{{Pos{2, 22}, "sym", 100}, {Pos{2, 22}, "SHARD_ID", 20}, {Pos{2, 22}, "last", 5}}
	if !slices.Equal(a.FieldLengths, want) {
		t.Fatalf("FieldLengths = %+v, want %+v", a.FieldLengths, want)
	}
	if a.FieldLength("SYM") != 100 || a.FieldLength("shard_id") != 20 || a.FieldLength("q") != 0 {
		t.Errorf("FieldLength lookups: sym %d, shard_id %d, q %d", a.FieldLength("SYM"), a.FieldLength("shard_id"), a.FieldLength("q"))
	}
	if b := aggOf(t, "define aggregation A from S select sum(qty) as q aggregate every sec;"); b.FieldLengths != nil {
		t.Errorf("no @store: FieldLengths = %+v", b.FieldLengths)
	}
}

func TestParse_StoreFieldLengthErrors(t *testing.T) {
	const def = "\ndefine aggregation A from S select sym, sum(qty) as q group by sym aggregate every sec"
	runErrCases(t, func(src string) error { return parseApp(aggStream + src) }, []errCase{
		{"no colon", `@store(type='rdbms', field.length="sym")` + def, "2:22", `field.length "sym": each item must be attribute:length`},
		{"bad name", `@store(field.length="a b:3")` + def, "2:8", `field.length "a b:3": each item must be attribute:length`},
		{"zero", `@store(field.length="sym:0")` + def, "2:8", `field.length of sym must be a whole number from 1 to 16383, found "0"`},
		{"too long", `@store(field.length="sym:16384")` + def, "2:8", `found "16384"`},
		{"not a number", `@store(field.length="sym:ten")` + def, "2:8", `found "ten"`},
		{"twice", `@store(field.length="sym:3, SYM:4")` + def, "2:8", "field.length names SYM twice"},
		{"two options", `@store(field.length="sym:3", Field.Length="q:4")` + def, "2:30", "@store has more than one field.length"},
	})
}
