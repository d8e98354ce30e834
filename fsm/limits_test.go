package fsm

import (
	"errors"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/agg"
)

// TestMaxKeys: an aggregation at its key limit refuses, at check time, input that would add
// a key and takes input for the keys it holds; an entry already in the log applies on every
// replica whatever the limit.
func TestMaxKeys(t *testing.T) {
	f := newFSM(t, Config{MaxKeys: 3})
	mustApply(t, f, 1, Command{Kind: KindDeploy, Time: t0, Text: testApp})
	r := mustApply(t, f, 2, batch(t0+1, part("S", "", 0, ev("a", 1), ev("b", 1), ev("c", 1))))
	if r.Parts[0].Events != 3 {
		t.Fatal(render(r))
	}
	errs := f.CheckBatch([]Part{part("S", "", 0, ev("a", 1), ev("d", 1)), part("S", "", 0, ev("b", 2), ev("c", 2))})
	if errs == nil || !errors.Is(errs[0], agg.ErrTooManyKeys) || errs[1] != nil {
		t.Fatalf("CheckBatch = %v, want the first part refused with ErrTooManyKeys", errs)
	}
	for _, want := range []string{"A holds 3 group keys", "--max-keys", "event 1"} {
		if !strings.Contains(errs[0].Error(), want) {
			t.Errorf("error %q does not say %q", errs[0], want)
		}
	}
	// In the log already (admitted by another leader, say): applied as usual.
	r = mustApply(t, f, 3, batch(t0+2, part("S", "", 0, ev("d", 1))))
	if r.Parts[0].Err != nil || r.Parts[0].Events != 1 {
		t.Fatal(render(r))
	}
	unlimited := newFSM(t, Config{})
	mustApply(t, unlimited, 1, Command{Kind: KindDeploy, Time: t0, Text: testApp})
	mustApply(t, unlimited, 2, batch(t0+1, part("S", "", 0, ev("a", 1), ev("b", 1), ev("c", 1))))
	if errs := unlimited.CheckBatch([]Part{part("S", "", 0, ev("d", 1), ev("e", 1))}); errs != nil {
		t.Fatalf("no limit: %v", errs)
	}
}
