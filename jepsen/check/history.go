// Package check holds the history a jepsen run records and the checkers that judge it
// against the promises in DESIGN.md ("What Tally promises"). Checkers are pure functions of
// the history: they start no processes and read no clocks, so a saved history can be
// checked again (and the checkers themselves are tested with hand-made histories).
package check

import "time"

// Status is how an operation ended, as the client saw it.
type Status string

const (
	// OK: the server acknowledged the operation (for ingest: committed).
	OK Status = "ok"
	// Fail: the server said the operation did not happen (a 4xx validation answer).
	Fail Status = "fail"
	// Unknown: no answer that settles it (timeout, broken connection, 5xx, 503): the
	// operation may or may not have taken effect, now or later.
	Unknown Status = "unknown"
)

// Kind is what an operation did.
type Kind string

const (
	// Ingest posts Events (all of one Key) under (Producer, Seq). Retries after an unknown
	// outcome reuse the same Producer, Seq and body; the Op records the whole
	// sequence of attempts: Invoke is the first attempt's start, Complete the last one's end.
	Ingest Kind = "ingest"
	// Read asks for Key's event count (all buckets) with a linearizable query; Value is
	// the answer.
	Read Kind = "read"
)

// Event is one event of the workload's stream. Every event of one Ingest op has the same
// Key, Producer and Seq; I numbers it within the op (0..n-1). TS is its event time (ms),
// which the aggregation buckets by; V a small positive value.
type Event struct {
	Key      string `json:"key"`
	Producer string `json:"producer"`
	Seq      int64  `json:"seq"`
	I        int64  `json:"i"`
	TS       int64  `json:"ts"`
	V        int64  `json:"v"`
}

// Op is one client operation.
type Op struct {
	ID      int    `json:"id"`      // unique within the history, in invocation order
	Process int    `json:"process"` // client number; a process runs one op at a time
	Kind    Kind   `json:"kind"`
	Node    string `json:"node"`  // node of the last attempt
	Group   int    `json:"group"` // the partition group that owns Key
	Key     string `json:"key"`

	Producer string  `json:"producer,omitempty"` // Ingest
	Seq      int64   `json:"seq,omitempty"`      // Ingest
	Events   []Event `json:"events,omitempty"`   // Ingest
	Index    uint64  `json:"index,omitempty"`    // Ingest, OK: the committed Raft index

	Value int64 `json:"value,omitempty"` // Read, OK: the count

	Status   Status        `json:"status"`
	Invoke   time.Duration `json:"invoke"`   // since the run started (monotonic clock)
	Complete time.Duration `json:"complete"` // since the run started; for Unknown, when the client gave up
	Attempts int           `json:"attempts"`
	Err      string        `json:"err,omitempty"` // the last attempt's error, if any
}

// Fault is one nemesis action, from when it began to when it was healed.
type Fault struct {
	Kind   string        `json:"kind"`   // e.g. "kill-leader", "pause-leader", "partition"
	Nodes  []string      `json:"nodes"`  // the nodes it acted on
	Group  int           `json:"group"`  // the group whose leader was targeted, or -1
	Detail string        `json:"detail"` // human-readable, e.g. "n1 | n2 n3"
	Start  time.Duration `json:"start"`
	End    time.Duration `json:"end"` // when healed (restarted, resumed, links restored)
	// Leader is true when the fault takes away a group's leader (kill, pause or isolation
	// of the leader): the failover checker measures from Start to the group's next
	// acknowledged write.
	Leader bool `json:"leader"`
}

// Output is one output event as a sink receiver or a subscriber got it.
type Output struct {
	ID     string        `json:"id"`     // "GROUP-INDEX-SEQ"
	Stream string        `json:"stream"` // output stream
	Body   string        `json:"body"`   // the raw JSON body (sink) or SSE data line (subscriber)
	Data   Event         `json:"data"`   // the body's "data" object, decoded (fields absent from it are zero)
	At     time.Duration `json:"at"`     // when it arrived, since the run started
	Conn   int           `json:"conn"`   // subscriber: which connection (reconnects count up); sink: 0
}

// ReplicaSample is one replica's (applied index, state hash) for one group at one moment.
type ReplicaSample struct {
	Node  string        `json:"node"`
	Group int           `json:"group"`
	Index uint64        `json:"index"`
	Hash  string        `json:"hash"`
	At    time.Duration `json:"at"`
}

// StoreSample is one key's event count as the shared store held it at one moment
// (a consistency=stored query), sampled during the run.
type StoreSample struct {
	Key   string        `json:"key"`
	Count int64         `json:"count"`
	At    time.Duration `json:"at"`
}

// Counts is an event count per key and bucket start (ms, the aggregation's 'seconds'
// granularity).
type Counts map[string]map[int64]int64

// History is everything a run recorded.
type History struct {
	Seed   int64   `json:"seed"`
	Ops    []Op    `json:"ops"`
	Faults []Fault `json:"faults"`

	// AlertStream is the output stream every event with V >= AlertMin reaches (a filter
	// query that copies Key, Producer, Seq, I, TS and V); Alerts is every delivery the
	// harness's HTTP sink receiver got, duplicates included, in arrival order.
	AlertStream string   `json:"alert_stream"`
	AlertMin    int64    `json:"alert_min"`
	Alerts      []Output `json:"alerts"`

	// Subscribed is what subscribers following a windowed output stream over SSE saw
	// (per subscriber, in arrival order, across reconnects), and Retained is that
	// stream's retained outputs read from the start after the run (the reference).
	Subscribed [][]Output `json:"subscribed"`
	Retained   []Output   `json:"retained"`

	Replicas []ReplicaSample `json:"replicas"` // during the run and after it
	Stored   []StoreSample   `json:"stored"`   // during the run

	// After the run, with every fault healed and every unknown ingest retried:
	FinalLive   Counts `json:"final_live"`   // linearizable query of the live aggregates
	FinalStored Counts `json:"final_stored"` // consistency=stored, after the final flush

	// Replication is the number of voters every group must have (the cluster's
	// --replicas); 0 in a history recorded without a cluster map, whose placement is then
	// not judged. Maps and Configs are sampled during the run; FinalMap and FinalConfigs
	// are read after every fault was healed and the map settled; Drained lists the nodes
	// drained out of the cluster (and not added again) by the end.
	Replication  int            `json:"replication,omitempty"`
	Maps         []MapSample    `json:"maps,omitempty"`
	Configs      []ConfigSample `json:"configs,omitempty"`
	FinalMap     *MapSample     `json:"final_map,omitempty"`
	FinalConfigs []ConfigSample `json:"final_configs,omitempty"`
	Drained      []string       `json:"drained,omitempty"`
}

// MapSample is the cluster map (GET /v1/cluster/map) as one node held it at one moment.
type MapSample struct {
	Node   string            `json:"node"` // the node asked
	Index  uint64            `json:"index"`
	Nodes  map[string]string `json:"nodes"` // node ID → state (active, draining, dead)
	Groups []MapGroup        `json:"groups"`
	At     time.Duration     `json:"at"`
}

// MapGroup is one group's placement in a MapSample.
type MapGroup struct {
	ID     int      `json:"id"`
	Voters []string `json:"voters"`
	Move   string   `json:"move,omitempty"` // the move in progress, "" when none
}

// ConfigSample is one group's Raft configuration as its leader reported it.
type ConfigSample struct {
	Node      string        `json:"node"` // the leader that reported it
	Group     int           `json:"group"`
	Term      uint64        `json:"term"`
	Voters    []string      `json:"voters"`
	NonVoters []string      `json:"non_voters,omitempty"`
	At        time.Duration `json:"at"`
}

// Verdict is one checker's judgement.
type Verdict struct {
	Name    string `json:"name"`    // short checker name, e.g. "exactly-once"
	Promise string `json:"promise"` // the promise it checks, in words, e.g. "no acknowledged event lost, none counted twice"
	OK      bool   `json:"ok"`
	// Problems names each violation found (capped at a readable number, with a count of
	// the rest); empty when OK.
	Problems []string `json:"problems,omitempty"`
	// Stats are figures worth reporting whatever the outcome (e.g. "ops": "1234").
	Stats map[string]string `json:"stats,omitempty"`
}
