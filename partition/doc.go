// Package partition decides which partition group receives each event of a stream, and
// checks that an app's queries are correct when their input is spread over several groups.
//
// A Tally cluster has N partition groups, each its own Raft group with its own shard ID
// (the SHARD_ID column of the aggregation tables). Every node routes every event of a
// stream the same way, according to the stream's routing, declared with Siddhi's
// distributed-sink vocabulary:
//
//	@distribution(strategy='partitioned', partitionKey='symbol')
//	define stream TradeStream (symbol string, price double, volume long);
//
// The package is pure: no I/O, no clock, no randomness, no per-process hash seed
// (hash/maphash is never used). The only state is the round-robin counter of a [Router].
//
// # Strategies
//
//   - partitioned: every event goes to the group chosen by its partition key,
//     [For]([KeyBytes](key), N). Events with the same key always reach the same group, on
//     every node and across restarts, so per-key state (windows, group-by rows) lives in
//     exactly one group. A window over a partitioned stream is kept per group: a window
//     without `group by` on the key sees only the events of its own group.
//   - roundRobin (the default when a stream has no @distribution): each ingest request goes,
//     as a whole, to the next group in turn. This is Siddhi's active-active deployment:
//     every group aggregates an arbitrary part of the stream, and the shard rows are merged
//     when the aggregation is read. Rotation is per [Router] (per node), starting at group 0;
//     it balances load, it is not a contract.
//   - broadcast: every group receives every event.
//
// [Router.Route] returns the parts of a batch as a slice sorted by group, each part's events
// in their original order, and only groups that receive at least one event. An empty batch
// gives no parts (and does not advance the round-robin rotation).
//
// # The partition key encoding (contract)
//
// [KeyBytes] turns a key value into bytes, independently of its type, the way Siddhi's
// String.valueOf does (Siddhi hashes String.valueOf(event[partitionKey])):
//
//	string          its UTF-8 bytes, as is
//	int, long       base-10 text: 42, -7
//	float           strconv.FormatFloat(f, 'g', -1, 32): 1.5, 1e+21, NaN, +Inf, -0
//	double          strconv.FormatFloat(f, 'g', -1, 64): 0.1, 42 (not "42.0")
//	bool            true or false
//	null            empty
//	object          its JSON text, as stored (an empty object value is null: empty)
//
// So the string "42", the int 42, the long 42 and the double 42.0 map to the same group.
// This is deliberate: a key means the same whatever type a client or a schema change gives
// it. (Siddhi would print the double as "42.0"; we use the shortest form instead so that
// integral doubles agree with integers.)
//
// # The hash (contract)
//
// [For] is FNV-1a 32-bit (hash/fnv's New32a: offset basis 2166136261, prime 16777619) of
// the key bytes, modulo the number of groups. Siddhi itself uses Java's
// Math.abs(String.hashCode() % N); we deliberately use a stronger, fixed hash: Java's
// polynomial hash clusters similar keys (sym1, sym2, ...) and has a sign quirk, whereas
// FNV-1a mixes every byte and is specified independently of any language runtime. The
// modulo bias of 2^32 mod N is negligible for any realistic N.
//
// The key encoding and the hash are part of the on-disk and wire contract: every node must
// compute the same group for the same key, and a group's Raft log and snapshots hold the
// events of its keys only. Changing either re-partitions every existing cluster (keys
// would move to other groups while their state stays where it was), so both are pinned by
// golden values in the tests. Changing the number of groups re-partitions as well.
//
// # Checking an app
//
// [CheckApp] rejects, when there is more than one group, the queries whose results would
// depend on how events were spread:
//
//   - a query with a window over a roundRobin stream: each group would see an arbitrary
//     part of the stream, so the window's contents would depend on which group an event
//     happened to reach. Partition the stream instead.
//   - a query or an aggregation over a broadcast stream: every group would process each
//     event, so outputs would be emitted, and totals counted, once per group.
//
// Only streams defined with `define stream` carry a routing. A stream defined implicitly as
// the output of a query inherits nothing: a query reading it runs in the group that produced
// its events, and is accepted. With one group, every app is accepted.
package partition
