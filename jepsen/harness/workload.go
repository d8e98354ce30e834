package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

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
	client *http.Client
	subs   http.RoundTripper // subscriptions' transport
}

func newWorkload(c *cluster, rec *recorder, seed uint64, groups, keys int) *workload {
	w := &workload{c: c, rec: rec, seed: seed, groups: groups,
		client: &http.Client{Timeout: 3 * time.Second, Transport: c.sec.transport(64)}, subs: c.sec.transport(4)}
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
		var body bytes.Buffer
		for i := range 1 + rng.IntN(4) {
			e := check.Event{Key: key, Producer: producer, Seq: seq, I: int64(i), TS: ts + int64(rng.IntN(1000)), V: 1 + int64(rng.IntN(10))}
			op.Events = append(op.Events, e)
			b, _ := json.Marshal(e)
			body.Write(b)
			body.WriteByte('\n')
		}
		op.Invoke = w.rec.now()
		for {
			n := w.c.nodes[rng.IntN(len(w.c.nodes))]
			op.Attempts++
			op.Node = n.id
			status, index, err := w.ingest(retry, n, producer, seq, body.Bytes())
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

// ingest posts one attempt. 200 is OK; 400 and 413 (the request itself is wrong) are Fail;
// anything else, or no answer, is Unknown.
func (w *workload) ingest(ctx context.Context, n *node, producer string, seq int64, body []byte) (check.Status, uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.c.url(n, "/v1/streams/Events/events"), bytes.NewReader(body))
	if err != nil {
		return check.Unknown, 0, err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Producer-Id", producer)
	req.Header.Set("Producer-Seq", strconv.FormatInt(seq, 10))
	resp, err := w.client.Do(req)
	if err != nil {
		return check.Unknown, 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch resp.StatusCode {
	case http.StatusOK:
		var ok struct {
			Index uint64 `json:"index"`
		}
		if err := json.Unmarshal(b, &ok); err != nil {
			return check.Unknown, 0, fmt.Errorf("ingest answer: %w", err)
		}
		return check.OK, ok.Index, nil
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return check.Fail, 0, fmt.Errorf("%d %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	return check.Unknown, 0, fmt.Errorf("%d %s", resp.StatusCode, bytes.TrimSpace(b))
}

// query runs a store query on n and returns its records.
func (w *workload) query(ctx context.Context, n *node, consistency, q string) ([][]any, error) {
	body, _ := json.Marshal(map[string]string{"appName": "Jepsen", "query": q})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.c.url(n, "/stores/query?consistency="+consistency), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("query on %s: %d %s", n.id, resp.StatusCode, bytes.TrimSpace(b))
	}
	var out struct {
		Records [][]any `json:"records"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&out); err != nil {
		return nil, fmt.Errorf("query on %s: %w", n.id, err)
	}
	return out.Records, nil
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
		n := w.c.nodes[rng.IntN(len(w.c.nodes))]
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
		n := w.c.nodes[i%len(w.c.nodes)]
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
		n := w.c.nodes[rng.IntN(len(w.c.nodes))]
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

// follow reads one subscription until ctx ends or the stream breaks; idle ends it early
// once nothing arrived for that long (0: never).
func (w *workload) follow(ctx context.Context, n *node, g int, from string, conn int, idle time.Duration) ([]check.Output, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	url := w.c.url(n, fmt.Sprintf("/v1/streams/%s/subscribe?group=%d&from=%s", burstStream, g, from))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: w.subs}).Do(req) // no overall timeout: ctx bounds it
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("subscribe on %s: %d %s", n.id, resp.StatusCode, bytes.TrimSpace(b))
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	var out []check.Output
	var timer <-chan time.Time
	for {
		if idle > 0 {
			timer = time.After(idle)
		}
		select {
		case <-ctx.Done():
			return out, nil
		case <-timer:
			return out, nil
		case l, ok := <-lines:
			if !ok {
				return out, nil
			}
			data, found := strings.CutPrefix(l, "data: ")
			if !found {
				continue
			}
			o, err := decodeOutput([]byte(data))
			if err != nil {
				return out, err
			}
			o.At, o.Conn = w.rec.now(), conn
			out = append(out, o)
		}
	}
}
