package raftnode

import "testing"

// TestNoPlantedBugs fails in a binary built with a planted-bug tag (bug_earlyack.go): such a
// build exists only to show that the fault-injection suite catches the bug.
func TestNoPlantedBugs(t *testing.T) {
	if bugEarlyAck {
		t.Error("built with -tags tally_bug_earlyack: ingest acknowledges before commit (a planted bug)")
	}
}
