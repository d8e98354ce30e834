package raftnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-db/tally/fsm"
)

// alertApp is the alert query with an http sink to url.
func alertApp(url string) string {
	return fmt.Sprintf(`@app:name('Al')
define stream S (symbol string, q long);
@sink(type='http', publisher.url='%s', headers='X-Tenant:t1', timeout='2 sec', retry.interval='10 millisec', retry.max.interval='200 millisec', @map(type='json'))
@sink(type='log', prefix='alert')
define stream Alerts (symbol string, t long);
from S#window.time(1 min) select symbol, sum(q) as t group by symbol having t > 100 insert into Alerts;
`, url)
}

// receiver is a webhook that records what it receives, keyed by Idempotency-Key.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	failing atomic.Bool // answer 500 while set
	mu      sync.Mutex
	bodies  map[string]string // first body per ID
	order   []string          // IDs in first-arrival order
	dups    int
	posts   int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, bodies: map[string]string{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	if r.failing.Load() {
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
		return
	}
	id := req.Header.Get("Idempotency-Key")
	var ev struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &ev); err != nil || ev.ID != id || req.Header.Get("X-Tenant") != "t1" || req.Header.Get("Content-Type") != "application/json" {
		r.t.Errorf("bad post: key %q, tenant %q, body %s (%v)", id, req.Header.Get("X-Tenant"), b, err)
	}
	if old, seen := r.bodies[id]; seen {
		r.dups++
		if old != string(b) {
			r.t.Errorf("duplicate %s with another body:\n%s\n%s", id, old, b)
		}
		return
	}
	r.bodies[id] = string(b)
	r.order = append(r.order, id)
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}

// alertsOf is every output of Alerts in n's outbox, by ID, and the IDs in log order.
func alertsOf(t *testing.T, n *Node) (map[string]string, []string) {
	t.Helper()
	es, err := n.FSM().OutputsAfter("Alerts", fsm.OutPos{}, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	var ids []string
	for i := range es {
		id := es[i].Pos.ID(n.Group())
		m[id] = string(es[i].AppendJSON(nil, n.Group(), "Alerts"))
		ids = append(ids, id)
	}
	return m, ids
}

// checkReceived compares the receiver with the outbox of n and with the alerts that the
// acknowledged counts per symbol imply: symbol k with c events (q = 1 each) alerts with
// t = 101 … c, once each, in order.
func checkReceived(t *testing.T, r *receiver, n *Node, acked map[string]int) {
	t.Helper()
	want, order := alertsOf(t, n)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bodies) != len(want) {
		t.Errorf("receiver holds %d outputs, the outbox %d", len(r.bodies), len(want))
	}
	for id, body := range want {
		if got, ok := r.bodies[id]; !ok || got != body {
			t.Errorf("output %s: received %q, want %q", id, got, body)
		}
	}
	if strings.Join(r.order, " ") != strings.Join(order, " ") {
		t.Errorf("first-arrival order differs from log order")
	}
	next := map[string]int64{}
	for _, id := range r.order {
		var ev struct {
			Stream string
			Data   struct {
				Symbol string
				T      int64
			}
		}
		if err := json.Unmarshal([]byte(r.bodies[id]), &ev); err != nil {
			t.Fatal(err)
		}
		if next[ev.Data.Symbol] == 0 {
			next[ev.Data.Symbol] = 101
		}
		if ev.Stream != "Alerts" || ev.Data.T != next[ev.Data.Symbol] {
			t.Fatalf("output %s: %s, want t=%d", id, r.bodies[id], next[ev.Data.Symbol])
		}
		next[ev.Data.Symbol]++
	}
	for k, c := range acked {
		if want := int64(max(c, 100) + 1); next[k] != want && !(c <= 100 && next[k] == 0) {
			t.Errorf("%s: %d acknowledged events, alerts up to t=%d", k, c, next[k]-1)
		}
	}
	t.Logf("%d outputs received once each, %d duplicates (same body), %d posts", len(r.order), r.dups, r.posts)
}

func deployAlerts(t *testing.T, c *cluster, url string) {
	t.Helper()
	leader := c.waitLeader(testTimeout)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, idx, err := leader.Deploy(ctx, alertApp(url))
	if err != nil {
		t.Fatal(err)
	}
	c.waitApplied(idx)
}

// TestDeliver_LeaderFailures kills, isolates and closes the leader while events flow; the
// webhook ends with every output exactly once by ID (duplicates only with identical
// bodies), in log order, and exactly the alerts the acknowledged events imply.
func TestDeliver_LeaderFailures(t *testing.T) {
	rcv := newReceiver(t)
	c := newCluster(t, 3, func(cfg *Config) { cfg.DeliveryRecordInterval = 20 * time.Millisecond })
	deployAlerts(t, c, rcv.srv.URL+"/alerts")

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	loaders := []*loader{{id: 0, retry: true}, {id: 1, retry: true}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, l := range loaders {
		wg.Go(func() { l.run(ctx, t, c, stop, func(*Node) {}) })
	}
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopLoad()
	acks := func() int64 {
		var s int64
		for _, l := range loaders {
			s += l.acks.Load()
		}
		return s
	}

	for round, mode := range []string{"crash", "partition", "close", "crash"} {
		eventually(t, testTimeout, func() bool { return rcv.count() > 0 && acks() >= int64(250+150*round) },
			"alerts delivered and load acknowledged before round %d", round)
		old := c.waitLeader(testTimeout)
		i := c.indexOf(old)
		switch mode {
		case "partition":
			c.isolate(i)
		case "crash":
			c.isolate(i)
			c.stop(i)
		case "close":
			c.stop(i)
		}
		waitLeaderOf(t, func() []*Node { return c.others(old) }, testTimeout)
		before := acks()
		eventually(t, testTimeout, func() bool { return acks() >= before+50 }, "load continues after %s of %s", mode, old.ID())
		if mode == "partition" {
			c.heal()
		} else {
			c.restart(i)
		}
		t.Logf("round %d: %s of %s done, %d acknowledged, %d received", round, mode, old.ID(), acks(), rcv.count())
	}
	stopLoad()

	leader := c.waitLeader(testTimeout)
	acked := map[string]int{}
	for _, l := range loaders {
		acked[l.key()] = len(l.acked)
		for i, s := range l.acked {
			if s != uint64(i+1) {
				t.Fatalf("loader %d acknowledged seq %d at %d", l.id, s, i)
			}
		}
	}
	_, ids := alertsOf(t, leader)
	eventually(t, testTimeout, func() bool { return rcv.count() >= len(ids) }, "every output delivered")
	c.waitConverged(testTimeout)
	checkReceived(t, rcv, leader, acked)
	eventually(t, testTimeout, func() bool {
		for _, s := range leader.SinkStatus() {
			if s.Undelivered != 0 {
				return false
			}
		}
		return true
	}, "delivered positions replicated")
}

// TestDeliver_ReceiverOutage: a webhook that answers 500 for a while gets every output
// afterwards, in order; past MaxUndelivered, input that feeds it is refused.
func TestDeliver_ReceiverOutage(t *testing.T) {
	rcv := newReceiver(t)
	rcv.failing.Store(true)
	c := newCluster(t, 1, func(cfg *Config) { cfg.MaxUndelivered = 20 })
	deployAlerts(t, c, rcv.srv.URL+"/alerts")
	leader := c.waitLeader(testTimeout)

	seq := uint64(0)
	send := func() error {
		seq++
		ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
		defer cancel()
		res, err := leader.Ingest(ctx, []fsm.Part{part("p", seq, row("a", 1))})
		if err != nil {
			t.Fatal(err)
		}
		return res.Parts[0].Err
	}
	for range 100 {
		if err := send(); err != nil {
			t.Fatal(err)
		}
	}
	var refused error
	for range 200 {
		if refused = send(); refused != nil {
			break
		}
	}
	if !errors.Is(refused, fsm.ErrSinkBacklog) || !strings.Contains(refused.Error(), "sink 0 (http "+rcv.srv.URL+"/alerts) of stream Alerts has 20 undelivered outputs") {
		t.Fatalf("over the bound: %v", refused)
	}
	// The deliverer tries on its own schedule: the bound can be reached before its first
	// attempt has failed.
	eventually(t, testTimeout, func() bool {
		st := leader.SinkStatus()[0]
		return st.Active && st.Failing && strings.Contains(st.LastError, "500") && st.Undelivered == 20
	}, "the sink's status to show the failing receiver and 20 undelivered outputs")
	if rcv.count() != 0 {
		t.Fatal("a failing receiver recorded outputs")
	}
	rcv.failing.Store(false)
	eventually(t, testTimeout, func() bool { return rcv.count() == 20 }, "the backlog is delivered")
	eventually(t, testTimeout, func() bool { return send() == nil }, "input accepted again")
	eventually(t, testTimeout, func() bool { return rcv.count() == 21 }, "the next alert is delivered")
	checkReceived(t, rcv, leader, nil)
	if st := leader.SinkStatus(); st[0].Failing {
		t.Errorf("still failing: %+v", st[0])
	}
}
