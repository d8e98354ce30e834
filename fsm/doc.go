// Package fsm adapts Tally's deterministic engine to hashicorp/raft: it defines the binary
// Command carried by each log entry, applies committed entries to the engine in log order,
// keeps the replicated dedup table, and snapshots and restores the whole state.
//
// # Determinism
//
// Apply must give byte-identical state on every replica of a group. Time inside the FSM is
// only the stamped time a leader wrote into each Command (never time.Now, never
// raft.Log.AppendedAt); nothing in Apply uses randomness, and no map iteration order reaches
// results, outputs or encoded state. Apply does not log: it counts (Stats). An entry that
// cannot be decoded, or of an unknown kind, panics: a replica that skipped it would diverge.
// Domain errors (unknown stream, bad event, seq too old, bad app text) are values in the
// ApplyResult, and the failed part or command changes nothing. See DESIGN.md in this
// directory for the invariants and the byte layout.
//
// # Commands
//
// A Command is encoded by MarshalBinary or AppendBinary: a format version byte (1), a Kind
// byte, the stamped time, then the kind's fields. KindBatch carries Parts (the group commit
// of many requests); KindTick only time; KindDeploy an app text; KindUndeploy an app name;
// KindFlushed the log index through which rows are in the shared store; KindShard the group's
// shard ID; KindDelivered a sink's delivered output position; KindTableWrite an app name and
// an on-demand table write. Unknown kinds fail to decode with ErrUnknownKind; kinds after
// KindTableWrite are reserved.
//
// # Deduplication
//
// A Part with a ProducerID is applied at most once per (ProducerID, Seq). Per producer the
// table keeps an anti-replay window: the highest seq applied and a bitmap of the 1024 seqs
// below it, so concurrent requests of one producer may commit out of order. A seq already
// applied is reported as Duplicate and changes nothing; a seq more than 1024 below the
// highest is rejected with ErrSeqTooOld; a seq is recorded only when its part applied. At
// most Config.MaxProducers producers are kept; a new one beyond that evicts the producer whose
// last applied part has the smallest log index (ties: the smallest id), the same one on every
// replica. An evicted producer is forgotten, so a very late retry of its requests would be
// applied again. The table is part of the snapshot, sorted by producer id.
//
// # Output IDs
//
// Outputs of one entry are numbered 0..n-1 across all its parts (Output.Seq), so
// (group, log index, Seq) identifies every window output: OutPos.ID writes it as
// "GROUP-INDEX-SEQ". Every output is kept in the replicated outbox until each sink of its
// stream delivered it (KindDelivered), plus RetainForSubscribers more per stream for
// subscribers; see outbox.go.
package fsm
