package fsm

import "testing"

// TestNoPlantedBugs fails in a binary built with a planted-bug tag (bug_nodedup.go): such a
// build exists only to show that the fault-injection suite catches the bug.
func TestNoPlantedBugs(t *testing.T) {
	if bugNoDedup {
		t.Error("built with -tags tally_bug_nodedup: the dedup table never recognizes a retry (a planted bug)")
	}
}
