//go:build tally_bug_earlyremove

package node

// bugEarlyRemove plants a bug for the fault-injection suite (jepsen/) to find; never ship a
// binary built with -tags tally_bug_earlyremove.
//
// What it breaks: a move (mover.go, step) removes the leaving replica right after adding the
// new one as a non-voter, without waiting for it to catch up and be promoted. Until it is,
// the group runs on one voter less: one failure from losing its quorum.
const bugEarlyRemove = true
