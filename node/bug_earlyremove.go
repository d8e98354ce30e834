//go:build tally_bug_earlyremove

package node

// bugEarlyRemove plants a bug for the fault-injection suite (jepsen/) to find; never ship a
// binary built with -tags tally_bug_earlyremove.
//
// What it breaks: a move (mover.go, step) removes the leaving replica first, before the new
// one has been added, caught up and promoted. Until the new one votes, the group runs on
// one voter less: one failure from losing its quorum.
const bugEarlyRemove = true
