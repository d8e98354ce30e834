//go:build tally_bug_earlyack

package raftnode

// bugEarlyAck plants a bug for the fault-injection suite (jepsen/) to find; never ship a
// binary built with -tags tally_bug_earlyack.
//
// What it breaks: the group committer (proposeBatch) answers every ingest request as a
// success as soon as its entry is handed to raft.Apply, without waiting for the entry to
// commit and apply. The answer looks normal (status 200, the events counted, the log index
// a guess). If the leader is deposed or killed before the entry reaches a quorum, the entry
// is lost although the client was told it was accepted.
//
// The promise the suite should find broken: an acknowledged write is durable. An event
// whose ingest answered 200 must be counted in every later read (no lost acknowledged
// writes), which a run with leader kills or partitions under load shows to be false.
const bugEarlyAck = true
