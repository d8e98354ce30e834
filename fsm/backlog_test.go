package fsm

import "testing"

// unflushed sums the flush backlog the engine's aggregations count.
func unflushed(f *FSM) int {
	n := 0
	for _, a := range f.eng.Apps() {
		for _, def := range a.Aggregations() {
			st, _ := a.Aggregation(def.Name)
			n += st.Unflushed()
		}
	}
	return n
}

// TestRestoreCountsBacklogFromFlushed: a restored FSM counts its flush backlog from the
// group's flushed index at once, as the replica it was taken from does, not every row.
func TestRestoreCountsBacklogFromFlushed(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	mustApply(t, f, 1, Command{Kind: KindDeploy, Time: t0, Text: testApp})
	mustApply(t, f, 2, batch(t0+100, part("S", "", 0, ev("a", 1), ev("b", 2))))
	mustApply(t, f, 3, batch(t0+1100, part("S", "", 0, ev("c", 3))))
	mustApply(t, f, 4, Command{Kind: KindFlushed, Time: t0 + 1200, Index: 2})
	mustApply(t, f, 5, batch(t0+1300, part("S", "", 0, ev("d", 4))))
	want := unflushed(f)
	if want == 0 {
		t.Fatal("nothing unflushed after index 2: the test proves nothing")
	}
	g := newFSM(t, DefaultConfig())
	if err := restore(t, g, snapshotBytes(t, f)); err != nil {
		t.Fatal(err)
	}
	if got := unflushed(g); got != want {
		t.Fatalf("restored FSM counts %d unflushed rows, the original %d", got, want)
	}
}
