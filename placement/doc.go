// Package placement decides where the replicas of partition groups live: a pure,
// deterministic function from the cluster map (nodes, groups, moves in flight) to the next
// moves the cluster should make.
//
// # Contract
//
// [Plan] takes an [Input] and returns a short ordered list of [Move]s that may start now.
// A move adds a replica of one group on a node (as a learner, promoted to voter once caught
// up) and then removes one replica (only once the new one is a voter); either half may be
// missing. The caller commits the moves to the replicated map before acting on them, and
// passes them back in [Input.InFlight] until they finish; Plan treats moves in flight as
// done when deciding and counts them against the throttles. Calling Plan again after every
// step converges: once the placement follows the rules below, Plan returns nothing.
//
// Plan does no I/O and reads no clock or random source, and no map iteration order reaches
// its result: nodes, groups and moves are sorted first, groups are handled in group ID
// order, and ties between nodes are broken by node ID. Among equally loaded nodes the scan
// in node ID order starts at a position derived from the group's ID and current nodes, so
// that groups placed together scatter over the cluster instead of sharing the same few
// nodes (a dead node's replicas are then re-created from many survivors, and leaders have
// many voters to spread over). The same input gives the same moves whatever the order of
// its slices.
//
// [Leaders] does the same for leadership: it returns [Transfer]s that spread group leaders
// over the active nodes.
//
// # Rules, highest priority first
//
//  1. Safety. A group never has two replicas on one node. Draining and dead nodes (and nodes
//     missing from the map) receive no replica. A group whose voters lost their majority to
//     dead nodes cannot change its configuration and gets no move. A group's last replica
//     on an active node is never removed without a replacement.
//  2. Throttles. A group has at most one move at a time. A node takes part in at most
//     [Input.MaxMovesPerNode] moves at once (default [DefaultMaxMovesPerNode]), counting
//     the moves that add a replica to it and those that remove one from it. Dead nodes do no
//     work in a move and are not bounded, so a death is repaired at once.
//  3. Replica count. Every group has Replicas voters on distinct active nodes (fewer only
//     while there are fewer active nodes). Replicas on dead or unknown nodes are replaced
//     first, then those on draining nodes; groups with the fewest working replicas go first.
//     Missing replicas are added, surplus ones removed.
//  4. Zone spread. A group's replicas are spread over zones as evenly as the active nodes
//     allow: when there are at least Replicas zones, no two replicas of a group share a
//     zone. A new replica goes to a zone holding the fewest of the group's replicas; a
//     group with a zone holding two more of its replicas than another zone that has room is
//     moved. Zone spread wins over balance: with 3 replicas and a zone of one node among 3
//     zones, that node holds every group.
//  5. Balance. Every active node holds within one replica of the mean (replicas over active
//     nodes), as far as rule 4 allows: a replica moves from the most loaded node to the
//     least loaded node at least two replicas lighter that may take it without crowding a
//     zone. New replicas go to the least loaded node that rule 4 allows.
//
// # Minimal movement
//
// Plan is incremental, not a solver: it only fixes what breaks a rule, greedily, never
// reshuffles a placement that follows the rules. A joining node receives about
// groups×Replicas/nodes replicas from the most loaded nodes and nothing else moves; a
// draining or dead node's replicas are re-created on the least loaded nodes that may take
// them, plus the odd balance move when zones get in the way. One call costs
// O(groups × Replicas) plus, per move, O(Replicas × min(zones, 16)) index steps: 10,000
// groups on 1,000 nodes plan in 10-20 ms (BenchmarkPlan10k), with 5 zones or one zone per
// node alike.
//
// [Leaders] moves a leadership from a node leading too many groups to a voter leading at
// least two fewer, or along a chain of such transfers (breadth first, the shortest chain)
// when no single one helps; then the same towards nodes leading too few.
//
// # What Plan leaves to its caller
//
// A move whose Add node dies or starts draining before it finishes stays in flight as far
// as Plan knows; the controller rolls it back (removes the learner) and drops it from the
// map, and the next Plan replaces it. Creating a group is a sequence of add-only moves, one
// per call; a controller bootstrapping a cluster can run Plan on a copy of the map, applying
// each result, to get a full initial placement in Replicas steps.
package placement
