// Package proxy is the userspace TCP proxy the jepsen harness puts on every link of a
// cluster: each node's Raft and HTTP-forwarding connections to every other node, and each
// node's connections to MariaDB. Nodes are configured to dial the proxy's loopback address
// instead of the real one, so the harness can break the network without root, iptables or
// network namespaces.
//
// A Proxy forwards the connections accepted on one loopback port to one target address. A
// Net is a set of named links (from, to, kind) with one Proxy each, and applies faults to the
// links that match a partition, an isolated node, a one-way cut or a kind.
//
// # Fault model
//
// Faults apply to connections that are already open as well as new ones: the forwarding
// loops consult the proxy's fault state for every chunk of bytes (a chunk is what one read
// returned, at most 32 KiB).
//
//   - Blackhole: bytes travelling in a blackholed direction are read and silently
//     discarded, and so is an end of stream (FIN) or a read error: nothing reaches the other
//     side, and nothing is closed. To the peers it looks like a network partition: writes
//     succeed (into socket buffers), reads block until the peer's own timeout fires, and no
//     error is reported. A connection accepted while both directions are blackholed is held
//     open but never connected to the target (the TCP handshake with the proxy completes,
//     which is the one visible difference from a real partition, where a dial times out).
//     A connection that lost bytes (or never reached the target) has a corrupt byte stream,
//     so Heal closes it with a reset; connections that merely sat idle in a blackhole carry
//     on after Heal.
//   - Reset: every open connection is closed at once with a TCP reset on both sides, and
//     until Heal new connections are accepted and reset straight away. To the peers it looks
//     like a crashed or restarted process: reads and writes fail with "connection reset by
//     peer" (or EOF), quickly, instead of timing out.
//   - Delay: every chunk is delivered no earlier than delay + uniform[0, jitter) after it was
//     read. Chunks of one direction are delivered in order: a chunk whose own deadline has
//     passed still waits for the ones read before it. Bytes read before SetDelay keep the
//     deadline they were given.
//   - Flaky: every chunk has a probability of resetting its connection (both sides, as
//     Reset does) instead of being delivered.
//
// # One-way faults
//
// A TCP connection cannot work in one direction only: data needs acknowledgements coming
// back. A proxy therefore never models a one-way network fault by blackholing one direction
// of a connection (Blackhole(Forward) and Blackhole(Backward) exist, to test how a protocol
// copes with a half-dead connection, but no real network produces them for long). A one-way
// cut between two endpoints, Net.CutOneWay(a, b), blackholes both directions of every
// connection a opens to b, while connections b opens to a keep working. For Raft that means
// a's RPCs to b (and their answers) are lost while b's RPCs to a get through, which is the
// asymmetry a one-way packet filter produces in practice: the side whose requests cannot
// leave stops getting answers.
//
// # Randomness
//
// Jitter and flaky draws come from a math/rand/v2 PCG generator per proxy, seeded from the
// seed given to Listen (a Net derives each link's seed from its own seed and the link's
// name). The draws are reproducible given the seed and the sequence of chunks, but how a
// TCP stream is cut into chunks depends on timing, so a run as a whole is not.
package proxy
