package fsm

import (
	"reflect"
	"slices"
	"testing"
)

// TestView_ReadOnly checks that the views handed to readers expose none of the methods
// that change the engine, an app, an aggregation or a table.
func TestView_ReadOnly(t *testing.T) {
	writers := []string{"Apply", "Tick", "Deploy", "Undeploy", "DropFlushed", "TableWrite", "UnmarshalBinary",
		"MarkFlushed", "ClearChanges", "Insert", "Delete", "Update", "Upsert"}
	for _, v := range []any{View{}, AppView{}, AggView{}, TableView{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumMethod() {
			if m := typ.Method(i).Name; slices.Contains(writers, m) {
				t.Errorf("%s has the writing method %s", typ, m)
			}
			for j := range typ.Method(i).Type.NumOut() {
				if out := typ.Method(i).Type.Out(j); out.Kind() == reflect.Pointer && out.Elem().PkgPath() == "github.com/tally-db/tally/engine" && out.Elem().Name() == "Engine" {
					t.Errorf("%s.%s returns the engine", typ, typ.Method(i).Name)
				}
			}
		}
	}
}

// TestView_AnswersAsEngine reads an app through the view.
func TestView_AnswersAsEngine(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	mustApply(t, f, 1, Command{Kind: KindDeploy, Time: t0, Text: testApp})
	mustApply(t, f, 2, batch(t0, part("S", "", 0, ev("a", 1), ev("b", 2))))
	f.Read(func(v View) {
		a, ok := v.App("T")
		if !ok || a.Name() != "T" || a.Text() != testApp || len(a.Parsed().Streams) != 1 {
			t.Fatalf("App(T) = %v, %v", a.Name(), ok)
		}
		st, ok := a.Aggregation("A")
		if !ok || st.Keys() != 2 || st.Def().Name != "A" {
			t.Fatalf("aggregation A: ok=%v keys=%d", ok, st.Keys())
		}
		if st.Unflushed() == 0 || len(st.ChangedIn(0, 2)) == 0 {
			t.Fatalf("aggregation A: unflushed %d, changed %v", st.Unflushed(), st.ChangedIn(0, 2))
		}
		if _, ok := v.App("Nope"); ok {
			t.Fatal("App(Nope) found")
		}
	})
}
