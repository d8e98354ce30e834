// Package window runs one SiddhiQL streaming query over a single input stream:
//
//	from S[filter]#window.X(args)[post-filter]
//	select ... group by ... having ...
//	insert [current|expired|all] events into Out;
//
// It matches WSO2 Siddhi 5.x semantics (window processors under
// core/query/processor/stream/window and core/query/selector/QuerySelector.java).
//
// # Clock
//
// The package has no clock of its own. Time enters only through Query.Process and
// Query.Advance (the leader's stamped time in milliseconds). A time smaller than the
// query's clock is treated as the current clock: time never goes back. Timers that a
// Siddhi scheduler would fire (time-window expiry, timeBatch flushes, externalTimeBatch
// timeouts) fire, in order, for every due time at or before the new clock, before the
// events of the same call are added; an expiry or flush fired that way is stamped with
// its due time, as a punctual Siddhi scheduler would stamp it.
//
// # Windows
//
//   - no window: every event passing the filter is CURRENT; aggregates are running
//     totals per group key, kept forever.
//   - length(n): sliding; the (n+1)-th arrival expires the oldest event, which is
//     emitted EXPIRED just before the new CURRENT one.
//   - lengthBatch(n[, stream.current.event]): tumbling; every n-th arrival flushes.
//   - time(t): sliding on the stamped clock; an event stamped ts is live in [ts, ts+t)
//     and expires (stamped ts+t) once the clock reaches ts+t.
//   - timeBatch(t[, start.time][, stream.current.event]): tumbling on the stamped
//     clock; the first period starts at the first event (or is aligned to start.time)
//     and each period end flushes.
//   - externalTime(attr, t): sliding on a long event-time attribute, evaluated only when
//     events arrive; expired events are stamped with the arriving event's time.
//   - externalTimeBatch(attr, t[, start, timeout, replace]): tumbling on event time; a
//     batch flushes when an event of a later batch arrives, or when timeout ms of the
//     stamped clock pass without a new batch (Siddhi's re-send of a timed-out batch
//     that later grows is kept).
//
// At a batch flush the previous batch's events are emitted EXPIRED (only when the
// query inserts expired or all events: otherwise Siddhi's batch windows do not keep
// them), then the aggregates are reset, then the new batch is emitted CURRENT. Current
// events keep the time they arrived at; expired events carry the flush time.
//
// # Selector
//
// Aggregates (sum, count, avg, min, max, distinctCount) are kept per group key and
// updated by every event that leaves the window (CURRENT adds, EXPIRED removes), whether
// or not it is emitted. Null arguments are skipped; sum, avg, min and max are null over
// no values, count and distinctCount are 0. sum over int/long is long, over float/double
// double; avg is double; min and max keep their argument's type; count and
// distinctCount are long. Removal from min and max is exact (a sorted multiset).
//
// Output rows follow Siddhi's QuerySelector: for sliding windows and queries with no
// window, one output per event (having applied after aggregation). For a batch window,
// each flushed chunk gives one output per group key (the last passing event of that key
// with the aggregate as of that event, keys in first-seen order) when the query has a
// group by, one output (the last passing event) when it has aggregates but no group by,
// and one output per event otherwise.
//
// # Output rate limits
//
// A query's output clause (`output [all|first|last] every N events | <time>`, `output
// snapshot every <time>`) passes the selector's outputs through a limiter (see limiter in
// ratelimit.go for each kind). Time periods end at multiples of the period since the
// epoch and fire from the stamped time of later calls, before any output stamped at or
// after the period end. A snapshot sees expired events too (to drop them from the
// snapshot) and turns off the batch reduction, as Siddhi does; its outputs are CURRENT
// copies. Held outputs keep their own time and are part of the encoded state.
//
// # Memory
//
// Sliding windows keep their events in a ring of columns (ring.go) in fixed-size blocks:
// per attribute the int64 bits of each value, or for strings a uint32 id into the column's
// dictionary of copied strings (counted per event, so an expired string goes), with a type
// tag per value, plus arrival times (a ring that fits one small block, as a partition's
// small windows do, keeps plain strings). A string column with more distinct strings than
// max(4096, events held/4) keeps plain strings instead, and a column that met a value of
// another kind keeps whole values; both switches are one-way and depend only on the
// ring's own contents. The arrays of numbers and ids hold no pointers, so the collector
// does not scan them, and an event is never moved once added (except within a ring's only,
// still small, block): an event held costs ~40 bytes for a four-attribute stream instead of
// a row of Values. Batch windows keep a copy of each call's rows in one slab. The selector
// uses one scratch row per chunk and a group-key buffer; the output rows of one chunk are
// carved from one slab and capped, so appending to one cannot reach the next. Process keeps
// no row of its input: emit must not call back into the query.
//
// # Determinism
//
// No wall clock, no randomness, and no Go map iteration reaches outputs or encodings:
// group keys and distinct values are encoded in sorted order, and outputs are emitted in
// event order. Query.Encode of two queries fed the same calls is byte-identical, and
// Decode into a freshly compiled query continues exactly as the original would.
//
// A Query is not safe for concurrent use.
package window
