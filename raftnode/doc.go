// Package raftnode runs one replica of a partition group: hashicorp/raft with raft-wal (or
// raft-boltdb, Config.LogStore) as log and stable store, a file snapshot store, and Tally's FSM. It adds what the raw
// library leaves to its user:
//
//   - a shared Raft port for every group of a node (Mux), with a meta channel that tells a
//     caller which HTTP address a Raft address belongs to, for forwarding to the leader;
//     optionally mutual TLS or a cluster key proof on every connection (WithTLS,
//     WithClusterKey) and a cap on connections that have not proven themselves;
//   - group commit on the leader: concurrent ingest calls become one entry (Ingest);
//   - the leader's stamped time and periodic tick entries, the only time the FSM sees;
//   - linearizable reads (commit index, VerifyLeader, wait for apply, and no reads before a
//     new leader's first barrier) and stale reads with read-your-writes by index (Read);
//   - idempotent join, removal, status, and leadership transfer on request (Transfer) and
//     on Close;
//   - hooks for fault injection: a DialMap that sends connections to other nodes through
//     other addresses (proxies), and Config.Clock (an OffsetClock) to skew stamped time.
//
// Raft's futures have no context; every blocking method here takes one and maps raft's
// errors once: ErrNotLeader (nothing was proposed), ErrUnknownOutcome (it may still
// commit: retry with the same producer seq), ErrClosed.
package raftnode
