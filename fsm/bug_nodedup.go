//go:build tally_bug_nodedup

package fsm

// bugNoDedup plants a bug for the fault-injection suite (jepsen/) to find; never ship a
// binary built with -tags tally_bug_nodedup.
//
// What it breaks: the dedup table (dedup.check) never recognizes a retry, so a request
// retried with the same Producer-Id and Producer-Seq after an unknown outcome (503, timeout,
// leader lost) is applied again when its first attempt did commit. The answer says the
// events were applied, not that they were a duplicate.
//
// The promise the suite should find broken: exactly once. A producer that retries with the
// same seq gets each event counted once; with this bug, counts read back exceed the events
// acknowledged, which a run with leader kills or partitions under retrying load shows.
const bugNoDedup = true
