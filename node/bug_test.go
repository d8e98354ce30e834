package node

import "testing"

// TestNoPlantedBugs fails in a binary built with a planted-bug tag (bug_earlyremove.go):
// such a build exists only to show that the fault-injection suite catches the bug.
func TestNoPlantedBugs(t *testing.T) {
	if bugEarlyRemove {
		t.Error("built with -tags tally_bug_earlyremove: a move removes the leaving replica before the new one votes (a planted bug)")
	}
}
