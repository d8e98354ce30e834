package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tally-db/tally/client"
	"github.com/tally-db/tally/jepsen/check"
	"github.com/tally-db/tally/partition"
)

// appText is the workload's app: every event counted per key and event-time second, every
// event with v >= alertMin copied to Alerts (an HTTP sink to the harness's receiver), and a
// windowed query whose outputs subscribers follow.
const appText = `@app:name('Jepsen')

@distribution(strategy='partitioned', partitionKey='key')
define stream Events (key string, producer string, seq long, i long, ts long, v long);

@PartitionById
define aggregation EventAgg
  from Events
  select key, count() as n, sum(v) as total
  group by key
  aggregate by ts every sec ... year;

@sink(type='http', publisher.url='%s', retry.interval='10 millisec', @map(type='json'))
define stream Alerts (key string, producer string, seq long, i long, ts long, v long);

from Events[v >= %d]
select key, producer, seq, i, ts, v
insert into Alerts;

from Events#window.time(1 sec)
select key, sum(v) as total
group by key
having total > 60
insert into Bursts;
`

const (
	alertMin     = 8
	alertStream  = "Alerts"
	burstStream  = "Bursts"
	eventBase    = int64(1_767_225_600_000) // 2026-01-01T00:00:00Z: event times are in its first seconds
	eventBuckets = 8
	allTime      = "within 0L, 9999999999999L"
)

// recorder timestamps operations on the monotonic clock and collects them.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	h     check.History
	next  int
}

func (r *recorder) now() time.Duration { return time.Since(r.start) }

func (r *recorder) id() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	return r.next
}

func (r *recorder) op(op check.Op) {
	r.mu.Lock()
	r.h.Ops = append(r.h.Ops, op)
	r.mu.Unlock()
}

func (r *recorder) fault(f check.Fault) {
	r.mu.Lock()
	r.h.Faults = append(r.h.Faults, f)
	r.mu.Unlock()
}

// workload drives producers, readers, samplers and subscribers against a cluster.
type workload struct {
	c      *cluster
	rec    *recorder
	seed   uint64
	groups int
	keys   []string
}

func newWorkload(c *cluster, rec *recorder, seed uint64, groups, keys int) *workload {
	w := &workload{c: c, rec: rec, seed: seed, groups: groups}
	for i := range keys {
		w.keys = append(w.keys, fmt.Sprintf("k%d", i))
	}
	return w
}

func (w *workload) group(key string) int { return int(partition.For([]byte(key), w.groups)) }

// producer posts ingest ops until issue ends, retrying each unknown outcome with the same
// producer seq and body (on any node) until it is acknowledged or retry ends.
func (w *workload) producer(issue, retry context.Context, proc int) {
	rng := rand.New(rand.NewPCG(w.seed, uint64(1000+proc)))
	producer := fmt.Sprintf("p%d", proc)
	for seq := int64(1); issue.Err() == nil; seq++ {
		key := w.keys[rng.IntN(len(w.keys))]
		op := check.Op{ID: w.rec.id(), Process: proc, Kind: check.Ingest, Key: key, Group: w.group(key),
			Producer: producer, Seq: seq}
		ts := eventBase + int64(rng.IntN(eventBuckets))*1000
		var events []any
		for i := range 1 + rng.IntN(4) {
			e := check.Event{Key: key, Producer: producer, Seq: seq, I: int64(i), TS: ts + int64(rng.IntN(1000)), V: 1 + int64(rng.IntN(10))}
			op.Events = append(op.Events, e)
			events = append(events, e)
		}
		op.Invoke = w.rec.now()
		for {
			n := w.c.pick(rng)
			op.Attempts++
			op.Node = n.id
			status, index, err := w.ingest(retry, n, producer, seq, events)
			op.Status, op.Index, op.Err = status, index, ""
			if err != nil {
				op.Err = err.Error()
			}
			if status != check.Unknown || retry.Err() != nil {
				break
			}
			select {
			case <-retry.Done():
			case <-time.After(time.Duration(20+rng.IntN(180)) * time.Millisecond):
			}
		}
		op.Complete = w.rec.now()
		w.rec.op(op)
	}
}

// requestTimeout bounds one ingest or query request of the workload.
const requestTimeout = 3 * time.Second

// ingest posts one attempt to n alone. 200 is OK; 400 and 413 (the request itself is
// wrong) are Fail; any other answer, or none, is Unknown.
func (w *workload) ingest(ctx context.Context, n *node, producer string, seq int64, events []any) (check.Status, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	res, err := n.api.Ingest(ctx, "Events", events, client.IngestOptions{ProducerID: producer, Seq: uint64(seq)})
	var ae *client.APIError
	switch {
	case err == nil:
		return check.OK, res.Index, nil
	case errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusRequestEntityTooLarge):
		return check.Fail, 0, err
	}
	return check.Unknown, 0, err
}

// query runs a store query on n alone and returns its records.
func (w *workload) query(ctx context.Context, n *node, consistency, q string) ([][]any, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	res, err := n.api.Query(ctx, "Jepsen", q, client.QueryOptions{Consistency: consistency})
	if err != nil {
		return nil, fmt.Errorf("query on %s: %w", n.id, err)
	}
	return res.Records, nil
}

// totals reads every key's event count over all time.
func (w *workload) totals(ctx context.Context, n *node, consistency string) (map[string]int64, error) {
	recs, err := w.query(ctx, n, consistency, "from EventAgg "+allTime+" per 'years' select key, n")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, r := range recs {
		if len(r) != 2 {
			return nil, fmt.Errorf("query on %s: record %v has %d columns, want 2", n.id, r, len(r))
		}
		k, _ := r[0].(string)
		c, err := r[1].(json.Number).Int64()
		if err != nil {
			return nil, fmt.Errorf("query on %s: count %v: %w", n.id, r[1], err)
		}
		out[k] += c
	}
	return out, nil
}

// counts reads every key's event count per event-time second.
func (w *workload) counts(ctx context.Context, n *node, consistency string) (check.Counts, error) {
	recs, err := w.query(ctx, n, consistency, "from EventAgg "+allTime+" per 'seconds' select key, AGG_TIMESTAMP, n")
	if err != nil {
		return nil, err
	}
	out := check.Counts{}
	for _, r := range recs {
		if len(r) != 3 {
			return nil, fmt.Errorf("query on %s: record %v has %d columns, want 3", n.id, r, len(r))
		}
		k, _ := r[0].(string)
		ts, err1 := r[1].(json.Number).Int64()
		c, err2 := r[2].(json.Number).Int64()
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("query on %s: record %v is not key, timestamp, count", n.id, r)
		}
		if out[k] == nil {
			out[k] = map[int64]int64{}
		}
		out[k][ts] += c
	}
	return out, nil
}

// reader issues linearizable reads of every key's count; each read is recorded as one op per
// key (a snapshot of all keys projects to a linearizable read of each).
func (w *workload) reader(ctx context.Context, proc int) {
	rng := rand.New(rand.NewPCG(w.seed, uint64(2000+proc)))
	for ctx.Err() == nil {
		n := w.c.pick(rng)
		invoke := w.rec.now()
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		got, err := w.totals(qctx, n, "linearizable")
		cancel()
		complete := w.rec.now()
		if err == nil {
			for _, k := range w.keys {
				w.rec.op(check.Op{ID: w.rec.id(), Process: proc, Kind: check.Read, Node: n.id, Group: w.group(k), Key: k,
					Value: got[k], Status: check.OK, Invoke: invoke, Complete: complete, Attempts: 1})
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(10+rng.IntN(40)) * time.Millisecond):
		}
	}
}

// storeSampler reads the stored counts now and then.
func (w *workload) storeSampler(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		ms := w.c.members()
		n := ms[i%len(ms)]
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		got, err := w.totals(qctx, n, "stored")
		cancel()
		if err == nil {
			at := w.rec.now()
			w.rec.mu.Lock()
			for _, k := range w.keys {
				if c, ok := got[k]; ok {
					w.rec.h.Stored = append(w.rec.h.Stored, check.StoreSample{Key: k, Count: c, At: at})
				}
			}
			w.rec.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(400 * time.Millisecond):
		}
	}
}

// replicaSampler asks n for its state hash per group every period.
func (w *workload) replicaSampler(ctx context.Context, n *node, period time.Duration) {
	for ctx.Err() == nil {
		w.sampleReplica(ctx, n)
		select {
		case <-ctx.Done():
		case <-time.After(period):
		}
	}
}

func (w *workload) sampleReplica(ctx context.Context, n *node) {
	if !n.running() {
		return
	}
	var st struct {
		Groups []struct {
			Group        int    `json:"group"`
			AppliedIndex uint64 `json:"applied_index"`
			StateHash    string `json:"state_hash"`
		} `json:"groups"`
	}
	if err := w.c.getJSON(ctx, n, "/v1/debug/state", &st); err != nil {
		return
	}
	at := w.rec.now()
	w.rec.mu.Lock()
	for _, g := range st.Groups {
		w.rec.h.Replicas = append(w.rec.h.Replicas, check.ReplicaSample{Node: n.id, Group: g.Group, Index: g.AppliedIndex, Hash: g.StateHash, At: at})
	}
	w.rec.mu.Unlock()
}

// sinksDelivered reports whether every group's leader says its sinks have nothing left to
// deliver.
func (w *workload) sinksDelivered(ctx context.Context, groups int) bool {
	for g := range groups {
		l := w.c.leader(ctx, g)
		if l == nil {
			return false
		}
		var out struct {
			Sinks []struct {
				Undelivered int `json:"undelivered"`
			} `json:"sinks"`
		}
		if err := w.c.getJSON(ctx, l, fmt.Sprintf("/v1/sinks?group=%d", g), &out); err != nil || len(out.Sinks) == 0 {
			return false
		}
		for _, s := range out.Sinks {
			if s.Undelivered > 0 {
				return false
			}
		}
	}
	return true
}

// receiver is the HTTP sink the Alerts stream delivers to. Now and then it records a
// delivery and still answers 500, so the sink retries and delivers it again.
type receiver struct {
	rec  *recorder
	srv  *http.Server
	ln   net.Listener
	mu   sync.Mutex
	rng  *rand.Rand
	outs []check.Output
}

func newReceiver(rec *recorder, seed uint64) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{rec: rec, ln: ln, rng: rand.New(rand.NewPCG(seed, 3))}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) url() string { return "http://" + r.ln.Addr().String() + "/alerts" }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	b, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out, err := decodeOutput(b)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out.At = r.rec.now()
	if k := req.Header.Get("Idempotency-Key"); k != out.ID {
		out.ID = "header " + k + " != body " + out.ID // the checker reports it as a phantom
	}
	r.mu.Lock()
	r.outs = append(r.outs, out)
	fail := r.rng.IntN(100) == 0
	r.mu.Unlock()
	if fail {
		http.Error(w, "receiver hiccup (deliberate)", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) outputs() []check.Output {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]check.Output(nil), r.outs...)
}

func (r *receiver) close() { _ = r.srv.Close() }

// decodeOutput reads one output event: {"id","stream","data":{...},...}.
func decodeOutput(b []byte) (check.Output, error) {
	var o struct {
		ID     string      `json:"id"`
		Stream string      `json:"stream"`
		Data   check.Event `json:"data"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return check.Output{}, fmt.Errorf("output %q: %w", b, err)
	}
	return check.Output{ID: o.ID, Stream: o.Stream, Body: string(b), Data: o.Data}, nil
}

// subscriber follows the Bursts outputs of group g over SSE, from the earliest retained,
// reconnecting to a random node every few seconds (and after errors) from the last ID seen.
func (w *workload) subscriber(ctx context.Context, g int) []check.Output {
	rng := rand.New(rand.NewPCG(w.seed, uint64(3000+g)))
	var seen []check.Output
	from := "earliest"
	for conn := 0; ctx.Err() == nil; conn++ {
		n := w.c.pick(rng)
		cctx, cancel := context.WithTimeout(ctx, time.Duration(2000+rng.IntN(3000))*time.Millisecond)
		got, _ := w.follow(cctx, n, g, from, conn, 0)
		cancel()
		seen = append(seen, got...)
		if len(got) > 0 {
			from = got[len(got)-1].ID
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return seen
}

// follow reads one subscription of n alone until ctx ends or the cluster refuses it; idle
// ends it early once nothing arrived for that long (0: never). A dropped connection is
// resumed on n from the last output, as one connection.
func (w *workload) follow(ctx context.Context, n *node, g int, from string, conn int, idle time.Duration) ([]check.Output, error) {
	sub, err := n.api.SubscribeGroup(ctx, burstStream, g, from)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil
		}
		return nil, fmt.Errorf("subscribe on %s: %w", n.id, err)
	}
	defer sub.Close()
	var out []check.Output
	for {
		nctx, cancel := ctx, context.CancelFunc(func() {})
		if idle > 0 {
			nctx, cancel = context.WithTimeout(ctx, idle)
		}
		o, err := sub.Next(nctx)
		cancel()
		if ctx.Err() != nil || (err != nil && nctx.Err() != nil) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("subscription on %s: %w", n.id, err)
		}
		co, err := decodeOutput(o.Raw)
		if err != nil {
			return out, err
		}
		co.At, co.Conn = w.rec.now(), conn
		out = append(out, co)
	}
}
