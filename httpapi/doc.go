// Package httpapi serves Tally's HTTP API with chi: ingest (JSON array or NDJSON, with
// Producer-Id/Producer-Seq for idempotent retries), Siddhi's store query API
// (POST /stores/query), a friendlier GET /v1/aggregations/{name}, app deployment, cluster
// join/removal/status, leadership transfer (POST /v1/cluster/transfer?group=G[&to=ID]),
// health, readiness and Prometheus metrics.
//
// For fault-injection tests, Config.DialContext redirects the connections this node opens
// to other nodes (a raftnode.DialMap), and Config.Clock enables GET and POST
// /v1/debug/clock, which skew the node's leader clock ({"offset_ms": N}); without it they
// answer 404.
//
// A node that is not its group's leader forwards writes and linearizable reads to the leader
// (found through the Raft meta channel), or answers 307 with ?redirect=true. Ingest takes
// one path on every node (route.go): decoded once where it arrives, each group's part
// committed locally or sent in a batch to the group's leader (routebatch.go), typed results
// back, HTTP rendered only by the node the client called. Other forwarded requests are
// marked and never forwarded twice. The package declares the small Group and
// Resolver interfaces it needs; *raftnode.Node and *raftnode.Resolver implement them.
package httpapi
