// Package security holds what protects the links of a Tally cluster: the node's TLS
// certificates (re-read when their files change), the shared cluster key for clusters
// without TLS, and a connection cap for listeners.
//
// The model. A node's identity is either a certificate signed by the cluster CA
// (--tls-ca) or knowledge of the cluster key (--cluster-key); the CA signs node
// certificates only, so any certificate it signed is a node, wherever it connects from.
//
//   - The HTTP API serves HTTPS with the node's certificate (--tls-cert, --tls-key). With
//     a CA, a client may present a certificate: it must be the CA's, and it makes the
//     request a node's (IsNode). User clients present none and authenticate as users.
//   - The Raft port, with a CA, speaks TLS only and requires a CA-signed certificate from
//     every peer (mutual TLS): anything else fails at the handshake. With a cluster key
//     instead, the accepting node sends a random nonce and the dialing node must answer
//     HMAC-SHA256(key, nonce) before its connection is routed.
//   - Node-to-node HTTP requests (forwarding, fan-out, rows, joins) use HTTPS with the
//     node's certificate as a client certificate, or carry ClusterKeyHeader.
//
// Certificates and the CA are checked for changes at most once a second when used, so a
// rotation needs no restart; the cluster key is read once at start.
package security
