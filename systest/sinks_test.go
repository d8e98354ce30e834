package systest

// Alert delivery with real processes: an HTTP sink pointed at a receiver in the test
// process while the leader is SIGKILLed, while the receiver refuses or is gone, and SSE
// subscriptions resumed with from=ID and Last-Event-ID on a follower.
//
// What every test relies on to compute the expected alerts (see checkAlerts):
//
//   - Each symbol has its own producer, which sends one event per batch and sends seq n+1
//     only after seq n was acknowledged (a retried seq already applied is answered as a
//     duplicate and not applied again). An acknowledgement means the entry is applied, so a
//     symbol's events are in the log exactly once each, in seq order.
//   - Output IDs are GROUP-INDEX-SEQ, the position in the log of the entry that caused the
//     output, so ordering outputs by ID is ordering them as the log does.
//   - The whole load of a test runs within one minute (checked), so the one-minute time
//     window never expires anything, and the sum is grouped by symbol, so the other
//     symbols' events interleaved in the log do not matter. For a symbol with acknowledged
//     quantities q1..qn (in seq order) the Alerts outputs, ordered by ID, must therefore be
//     exactly the running sums q1+…+qk that exceed 100, each once. The test computes them
//     with a single uninterrupted engine (engine.New, the same app text) fed the symbol's
//     quantities in that order, rather than by hand.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/fsm"
)

// alertsApp is the alert query of the issue with an HTTP sink to sinkURL.
func alertsApp(sinkURL string) string {
	return fmt.Sprintf(`@app:name('Alerts')
define stream S (symbol string, q long);
@sink(type='http', publisher.url='%s', @map(type='json'))
define stream Alerts (symbol string, t long);
from S#window.time(1 min) select symbol, sum(q) as t group by symbol having t > 100 insert into Alerts;
`, sinkURL)
}

// deployAlerts deploys alertsApp through POST /v1/apps and waits until every running node
// has it.
func (c *cluster) deployAlerts(sinkURL string) {
	c.t.Helper()
	leader := c.waitLeader(10 * time.Second)
	if code, body := c.deploy(leader, alertsApp(sinkURL)); code != http.StatusCreated && code != http.StatusOK {
		c.t.Fatalf("deploy Alerts: %d %s", code, body)
	}
	c.eventually(10*time.Second, "the Alerts app on every node", func() bool {
		for _, nd := range c.nodes {
			if nd.cmd == nil {
				continue
			}
			var out struct{ Apps []struct{ Name string } }
			if c.getJSON(nd, "/v1/apps", &out) != nil || !slices.ContainsFunc(out.Apps, func(a struct{ Name string }) bool { return a.Name == "Alerts" }) {
				return false
			}
		}
		return true
	})
}

// alertReceiver is the webhook the sink posts to: it records each output once by its
// Idempotency-Key, checks the body's id is that key and that a duplicate has the same body.
type alertReceiver struct {
	t    *testing.T
	addr string // host:port, kept across close/reopen
	srv  *httptest.Server
	// refuse makes it answer 503 (and record nothing).
	refuse atomic.Bool

	mu      sync.Mutex
	bodies  map[string]string // first body per ID
	order   []string          // IDs in first-arrival order
	dups    int               // posts of an ID already recorded
	posts   int               // every post, refused ones included
	refused int
}

func newAlertReceiver(t *testing.T) *alertReceiver {
	r := &alertReceiver{t: t, bodies: map[string]string{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.addr = r.srv.Listener.Addr().String()
	t.Cleanup(func() {
		if r.srv != nil {
			r.srv.Close()
		}
	})
	return r
}

func (r *alertReceiver) url() string { return "http://" + r.addr + "/alerts" }

// closeListener closes the listener and every connection: posts fail with connection
// refused until reopen.
func (r *alertReceiver) closeListener() {
	r.srv.Close()
	r.srv = nil
}

// reopen listens again on the same address.
func (r *alertReceiver) reopen() {
	r.t.Helper()
	var ln net.Listener
	deadline := time.Now().Add(5 * time.Second)
	for {
		var err error
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("cannot listen on %s again: %v", r.addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	r.srv = srv
}

func (r *alertReceiver) serve(w http.ResponseWriter, req *http.Request) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return // the sender went away mid-request (a killed leader): it is retried
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	if r.refuse.Load() {
		r.refused++
		http.Error(w, "receiver down for the test", http.StatusServiceUnavailable)
		return
	}
	id := req.Header.Get("Idempotency-Key")
	var ev struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &ev); err != nil || id == "" || ev.ID != id || req.Method != http.MethodPost ||
		req.URL.Path != "/alerts" || req.Header.Get("Content-Type") != "application/json" {
		r.t.Errorf("bad post %s %s: Idempotency-Key %q, Content-Type %q, body %s (%v)", req.Method, req.URL.Path, id, req.Header.Get("Content-Type"), b, err)
		return
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

func (r *alertReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}

func (r *alertReceiver) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.bodies[id]
	return ok
}

// alertLoad runs one producer per symbol on stream S: one event per batch, Producer-Id and
// Producer-Seq, every seq retried (on 5xx or connection errors, at the next live node) until
// acknowledged, then the next after pause.
type alertLoad struct {
	c       *cluster
	symbols []string
	pause   time.Duration

	stop    atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	acked   map[string][]int64 // symbol → acknowledged quantities, in seq order
	acks    int
	retries int
	first   time.Time // first send
	last    time.Time // last acknowledgement
}

// alertQty is the quantity of a symbol's event seq: 1..25, so a symbol alerts from about its
// 8th event on, then at every event.
func alertQty(sym int, seq uint64) int64 { return 1 + int64((seq*37+uint64(sym)*11)%25) }

func (l *alertLoad) run() {
	l.acked = map[string][]int64{}
	l.first = time.Now()
	for si, sym := range l.symbols {
		l.wg.Go(func() {
			producer := "alerts-" + sym
			next := si
			for seq := uint64(1); !l.stop.Load(); seq++ {
				q := alertQty(si, seq)
				ev := fmt.Sprintf(`{"symbol":%q,"q":%d}`, sym, q)
				deadline := time.Now().Add(30 * time.Second)
				for {
					if time.Now().After(deadline) {
						l.c.t.Errorf("producer %s seq %d: not acknowledged within 30s", producer, seq)
						return
					}
					nd := l.c.nodes[next%len(l.c.nodes)]
					if !nd.alive.Load() {
						next++
						continue
					}
					ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
					code, _, body, err := l.c.post(ctx, nd, "S", "", producer, seq, []string{ev})
					cancel()
					if err == nil && code == http.StatusOK {
						l.mu.Lock()
						l.acked[sym] = append(l.acked[sym], q)
						l.acks++
						l.last = time.Now()
						l.mu.Unlock()
						break
					}
					if err == nil && code < 500 {
						l.c.t.Errorf("producer %s seq %d: unexpected %d %s", producer, seq, code, body)
						return
					}
					l.mu.Lock()
					l.retries++
					l.mu.Unlock()
					next++
					time.Sleep(20 * time.Millisecond)
				}
				time.Sleep(l.pause)
			}
		})
	}
}

func (l *alertLoad) ackCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acks
}

// finish stops the producers after their current seq is acknowledged and checks the load
// stayed within the one minute the expected alerts rely on.
func (l *alertLoad) finish() {
	l.c.t.Helper()
	l.stop.Store(true)
	l.wg.Wait()
	if d := l.last.Sub(l.first); d > 55*time.Second {
		l.c.t.Fatalf("the load took %s: the 1 min window may have expired events, so the expected alerts are not the running sums", d)
	}
}

// sinkInfo is one row of GET /v1/sinks.
type sinkInfo struct {
	App         string `json:"app"`
	Stream      string `json:"stream"`
	Sink        int    `json:"sink"`
	Delivered   string `json:"delivered"`
	Undelivered int    `json:"undelivered"`
	Active      bool   `json:"active"`
	Failing     bool   `json:"failing"`
	LastError   string `json:"last_error"`
}

// alertSink answers nd's view of the Alerts sink.
func (c *cluster) alertSink(nd *node) (sinkInfo, error) {
	var out struct{ Sinks []sinkInfo }
	if err := c.getJSON(nd, "/v1/sinks", &out); err != nil {
		return sinkInfo{}, err
	}
	for _, s := range out.Sinks {
		if s.App == "Alerts" && s.Stream == "Alerts" && s.Sink == 0 {
			return s, nil
		}
	}
	return sinkInfo{}, fmt.Errorf("%s lists no Alerts sink: %+v", nd.id, out.Sinks)
}

// waitDelivered waits (bounded) until the leader's sink worker has delivered everything and
// replicated its position, and returns that position: the ID of the last output.
func (c *cluster) waitDelivered(rcv *alertReceiver, timeout time.Duration) string {
	c.t.Helper()
	var last string
	c.eventually(timeout, "every output delivered (undelivered 0 on the leader)", func() bool {
		leader := c.waitLeader(10 * time.Second)
		s, err := c.alertSink(leader)
		if err != nil || !s.Active || s.Undelivered != 0 || !rcv.has(s.Delivered) {
			return false
		}
		last = s.Delivered
		return true
	})
	return last
}

// sseEvent is one Server-Sent Event of a subscription.
type sseEvent struct{ id, event, data string }

// sseSub is an open subscription; its reader goroutine ends when the server closes the
// stream or close is called.
type sseSub struct {
	cancel context.CancelFunc
	events chan sseEvent
}

// subscribe opens GET /v1/streams/Alerts/subscribe on nd with from (none when empty) and a
// Last-Event-ID header (none when empty).
func (c *cluster) subscribe(nd *node, from, lastEventID string) (*sseSub, error) {
	u := "http://" + nd.httpAddr + "/v1/streams/Alerts/subscribe"
	if from != "" {
		u += "?from=" + url.QueryEscape(from)
	}
	ctx, cancel := context.WithTimeout(c.t.Context(), 60*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req) // no client timeout: the stream lives on
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("subscribe %s: %d %s %s", u, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s := &sseSub{cancel: cancel, events: make(chan sseEvent, 64)}
	go func() {
		defer close(s.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.id != "" || ev.data != "" {
					select {
					case s.events <- ev:
					case <-ctx.Done():
						return
					}
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "id: "):
				ev.id = line[len("id: "):]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			}
		}
	}()
	return s, nil
}

func (s *sseSub) close() { s.cancel() }

// next waits up to timeout for the next event; ok is false on timeout or the stream's end.
func (s *sseSub) next(timeout time.Duration) (sseEvent, bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case ev, ok := <-s.events:
		return ev, ok
	case <-t.C:
		return sseEvent{}, false
	}
}

// replay reads the whole retained outbox of Alerts on nd (from=earliest) up to the output
// last, and checks nothing follows it.
func (c *cluster) replay(nd *node, last string) []sseEvent {
	c.t.Helper()
	sub, err := c.subscribe(nd, "earliest", "")
	if err != nil {
		c.t.Fatal(err)
	}
	defer sub.close()
	var out []sseEvent
	for {
		ev, ok := sub.next(15 * time.Second)
		if !ok {
			c.t.Fatalf("replay on %s: stream ended or stalled after %d outputs, before %s", nd.id, len(out), last)
		}
		out = append(out, ev)
		if ev.id == last {
			break
		}
	}
	if ev, ok := sub.next(300 * time.Millisecond); ok {
		c.t.Fatalf("replay on %s: output %s after the last delivered one %s", nd.id, ev.id, last)
	}
	return out
}

// idLess orders output IDs as the log does.
func idLess(t *testing.T, a, b string) bool {
	t.Helper()
	_, pa, err := fsm.ParseOutputID(a)
	if err != nil {
		t.Fatal(err)
	}
	_, pb, err := fsm.ParseOutputID(b)
	if err != nil {
		t.Fatal(err)
	}
	return pa.Less(pb)
}

// alertBody is the part of a delivered or replayed output that the checks read.
type alertBody struct {
	ID      string `json:"id"`
	Stream  string `json:"stream"`
	App     string `json:"app"`
	TS      int64  `json:"ts"`
	Expired bool   `json:"expired"`
	Data    struct {
		Symbol string `json:"symbol"`
		T      int64  `json:"t"`
	} `json:"data"`
}

// expectedAlerts feeds one uninterrupted engine each symbol's acknowledged quantities in seq
// order, all at one time (nothing expires, as in the cluster within its minute), and
// returns the t of each output per symbol.
func expectedAlerts(t *testing.T, acked map[string][]int64) map[string][]int64 {
	t.Helper()
	e, err := engine.New(engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Deploy(alertsApp("http://127.0.0.1:1/alerts")); err != nil {
		t.Fatal(err)
	}
	want := map[string][]int64{}
	index := uint64(0)
	const now = 1_700_000_000_000
	for _, sym := range slices.Sorted(maps.Keys(acked)) {
		for _, q := range acked[sym] {
			index++
			outs, err := e.Apply(index, now, "S", []expr.Row{{expr.String(sym), expr.Long(q)}})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range outs {
				if o.Stream != "Alerts" || o.Expired || o.Row[0].S != sym {
					t.Fatalf("reference engine: unexpected output %+v", o)
				}
				want[sym] = append(want[sym], o.Row[1].I)
			}
		}
	}
	return want
}

// checkAlerts compares the receiver with the replay of the retained outbox (same IDs, none
// missing, none extra, identical bodies, first arrivals in log order) and with the alerts
// the acknowledged events imply (see the file comment). It returns the number of outputs.
func checkAlerts(t *testing.T, rcv *alertReceiver, replay []sseEvent, load *alertLoad) int {
	t.Helper()
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(replay) >= 10_000 {
		t.Fatalf("%d outputs: past the 10,000 retained for subscribers the replay cannot be complete; lower the load", len(replay))
	}
	replayed := map[string]string{}
	for i, ev := range replay {
		if ev.event != "output" {
			t.Errorf("replayed %s is a %q event", ev.id, ev.event)
		}
		if _, dup := replayed[ev.id]; dup {
			t.Errorf("replay has %s twice", ev.id)
		}
		if i > 0 && !idLess(t, replay[i-1].id, ev.id) {
			t.Errorf("replay out of order: %s then %s", replay[i-1].id, ev.id)
		}
		replayed[ev.id] = ev.data
		if got, ok := rcv.bodies[ev.id]; !ok {
			t.Errorf("output %s never delivered", ev.id)
		} else if got != ev.data {
			t.Errorf("output %s delivered as\n%s\nreplayed as\n%s", ev.id, got, ev.data)
		}
	}
	for id := range rcv.bodies {
		if _, ok := replayed[id]; !ok {
			t.Errorf("delivered %s is not in the outbox", id)
		}
	}
	for i := 1; i < len(rcv.order); i++ {
		if !idLess(t, rcv.order[i-1], rcv.order[i]) {
			t.Errorf("first arrivals out of log order: %s then %s", rcv.order[i-1], rcv.order[i])
		}
	}

	got := map[string][]int64{}
	lo, hi := load.first.Add(-time.Second).UnixMilli(), load.last.Add(time.Second).UnixMilli()
	for _, ev := range replay { // in ID order
		var b alertBody
		if err := json.Unmarshal([]byte(ev.data), &b); err != nil {
			t.Fatalf("output %s: %v", ev.id, err)
		}
		if b.ID != ev.id || b.Stream != "Alerts" || b.App != "Alerts" || b.Expired || b.TS < lo || b.TS > hi {
			t.Errorf("output %s: %s (stamps of the load are within %d..%d)", ev.id, ev.data, lo, hi)
		}
		got[b.Data.Symbol] = append(got[b.Data.Symbol], b.Data.T)
	}
	want := expectedAlerts(t, load.acked)
	for _, sym := range load.symbols {
		if !slices.Equal(got[sym], want[sym]) {
			t.Errorf("%s: %d acknowledged events %v\nalerts t = %v\nwant      %v", sym, len(load.acked[sym]), load.acked[sym], got[sym], want[sym])
		}
	}
	for sym := range got {
		if !slices.Contains(load.symbols, sym) {
			t.Errorf("alerts for unknown symbol %q", sym)
		}
	}
	return len(replay)
}

// TestSinks_LeaderKills: producers run while the leader is SIGKILLed three times (each
// killed node restarted); afterwards the webhook holds every output of the replicated
// outbox once by ID (duplicates only with identical bodies), and the alerts are exactly
// the running sums over 100 of the acknowledged events (see the file comment).
func TestSinks_LeaderKills(t *testing.T) {
	rcv := newAlertReceiver(t)
	c := newCluster(t, 3)
	c.deployAlerts(rcv.url())

	load := &alertLoad{c: c, symbols: []string{"a", "b", "c"}, pause: 20 * time.Millisecond}
	load.run()
	var failovers []time.Duration
	for round := range 3 {
		acks, got := load.ackCount(), rcv.count()
		c.eventually(15*time.Second, fmt.Sprintf("acknowledgements and deliveries before kill %d", round+1), func() bool {
			return load.ackCount() >= acks+60 && rcv.count() >= got+20
		})
		leader := c.waitLeader(10 * time.Second)
		killed, before := time.Now(), load.ackCount()
		c.kill(leader)
		c.eventually(15*time.Second, "acknowledgements after the kill", func() bool { return load.ackCount() >= before+10 })
		failovers = append(failovers, time.Since(killed))
		c.start(leader)
		t.Logf("kill %d: leader %s SIGKILLed, 10 more acknowledgements %s later, restarted; %d acknowledged, %d delivered",
			round+1, leader.id, failovers[round].Round(time.Millisecond), load.ackCount(), rcv.count())
	}
	acks := load.ackCount()
	c.eventually(15*time.Second, "acknowledgements after the last restart", func() bool { return load.ackCount() >= acks+30 })
	load.finish()

	drained := time.Now()
	last := c.waitDelivered(rcv, 30*time.Second)
	t.Logf("load: %d events acknowledged in %s (%d client retries); sink drained %s after the load stopped",
		load.acks, load.last.Sub(load.first).Round(time.Millisecond), load.retries, time.Since(drained).Round(time.Millisecond))
	replays := map[string][]sseEvent{}
	for _, nd := range c.nodes {
		replays[nd.id] = c.replay(nd, last)
	}
	ref := replays[c.nodes[0].id]
	for id, r := range replays {
		if !slices.Equal(r, ref) {
			t.Errorf("%s replays %d outputs, %s %d, not the same", id, len(r), c.nodes[0].id, len(ref))
		}
	}
	n := checkAlerts(t, rcv, ref, load)
	rcv.mu.Lock()
	t.Logf("%d outputs, each delivered; %d duplicate posts (identical bodies), %d posts in all", n, rcv.dups, rcv.posts)
	rcv.mu.Unlock()
}

// TestSinks_ReceiverDown: the webhook answers 503 for 10 s, then is gone (listener closed)
// for 10 s while events keep flowing; after it comes back on the same port it receives every
// output, first arrivals in log order, none missing compared with the outbox replay.
func TestSinks_ReceiverDown(t *testing.T) {
	rcv := newAlertReceiver(t)
	c := newCluster(t, 3)
	c.deployAlerts(rcv.url())

	load := &alertLoad{c: c, symbols: []string{"a", "b", "c"}, pause: 25 * time.Millisecond}
	load.run()
	c.eventually(15*time.Second, "the first deliveries", func() bool { return rcv.count() >= 20 })
	leader := c.waitLeader(10 * time.Second)

	// Down, phase 1: 503 answers.
	rcv.refuse.Store(true)
	time.Sleep(200 * time.Millisecond) // a post in flight may still be recorded
	down, acks := rcv.count(), load.ackCount()
	c.eventually(10*time.Second, "the sink failing with 503", func() bool {
		s, err := c.alertSink(c.waitLeader(10 * time.Second))
		return err == nil && s.Active && s.Failing && strings.Contains(s.LastError, "503") && s.Undelivered > 0
	})
	time.Sleep(10 * time.Second)
	// Down, phase 2: nobody listens.
	rcv.closeListener()
	c.eventually(10*time.Second, "the sink failing to connect", func() bool {
		s, err := c.alertSink(c.waitLeader(10 * time.Second))
		return err == nil && s.Failing && strings.Contains(s.LastError, "connection refused")
	})
	time.Sleep(10 * time.Second)
	s, err := c.alertSink(c.waitLeader(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	refused := rcv.refused
	rcv.mu.Unlock()
	if got := rcv.count(); got != down {
		t.Errorf("the receiver recorded %d outputs while down", got-down)
	}
	t.Logf("receiver down 20 s: %d events acknowledged meanwhile, %d outputs undelivered, %d posts answered 503",
		load.ackCount()-acks, s.Undelivered, refused)

	rcv.refuse.Store(false)
	rcv.reopen()
	up := time.Now()
	c.eventually(15*time.Second, "deliveries again", func() bool { return rcv.count() > down })
	t.Logf("first delivery %s after the receiver came back", time.Since(up).Round(time.Millisecond))
	acks = load.ackCount()
	c.eventually(10*time.Second, "acknowledgements after recovery", func() bool { return load.ackCount() >= acks+30 })
	load.finish()

	last := c.waitDelivered(rcv, 30*time.Second)
	t.Logf("backlog and the rest delivered %s after the receiver came back", time.Since(up).Round(time.Millisecond))
	if s, err := c.alertSink(c.waitLeader(10 * time.Second)); err != nil || s.Failing {
		t.Errorf("sink after recovery: %+v %v", s, err)
	}
	n := checkAlerts(t, rcv, c.replay(c.followers(leader)[0], last), load)
	rcv.mu.Lock()
	t.Logf("load: %d events in %s; %d outputs, %d delivered before the outage; %d duplicate posts, %d posts in all",
		load.acks, load.last.Sub(load.first).Round(time.Millisecond), n, down, rcv.dups, rcv.posts)
	rcv.mu.Unlock()
}

// TestSinks_SubscriberResume: a subscriber on a follower reads some outputs, disconnects and
// resumes with from=<last ID>, with Last-Event-ID, on the other follower, and after that
// follower was stopped (SIGTERM) under it, while events flow; the concatenation is exactly
// the full replay from earliest: no gap, no duplicate.
func TestSinks_SubscriberResume(t *testing.T) {
	rcv := newAlertReceiver(t)
	c := newCluster(t, 3)
	c.deployAlerts(rcv.url())
	leader := c.waitLeader(10 * time.Second)
	followers := c.followers(leader)

	load := &alertLoad{c: c, symbols: []string{"a", "b", "c", "d"}, pause: 20 * time.Millisecond}
	load.run()
	var got []sseEvent
	read := func(sub *sseSub, n int, until string) {
		t.Helper()
		defer sub.close()
		for i := 0; n == 0 || i < n; i++ {
			ev, ok := sub.next(15 * time.Second)
			if !ok {
				t.Fatalf("subscription ended or stalled after %d outputs", len(got))
			}
			got = append(got, ev)
			if ev.id == until {
				return
			}
		}
	}
	open := func(nd *node, from, lastEventID string) *sseSub {
		t.Helper()
		sub, err := c.subscribe(nd, from, lastEventID)
		if err != nil {
			t.Fatal(err)
		}
		return sub
	}
	lastID := func() string { return got[len(got)-1].id }

	read(open(followers[0], "earliest", ""), 40, "")
	segments := []int{len(got)}
	var stopTook time.Duration
	for _, how := range []string{"from", "header", "other", "from", "sigterm", "header"} {
		switch how {
		case "from":
			read(open(followers[0], lastID(), ""), 40, "")
		case "header":
			read(open(followers[0], "", lastID()), 40, "")
		case "other": // IDs are the same on every replica
			read(open(followers[1], lastID(), ""), 40, "")
		case "sigterm":
			// The node serving the subscription shuts down gracefully: the open stream
			// must not hold its shutdown (CloseSubscriptions), and whatever it sent before
			// ending is part of the sequence the client resumes after.
			sub := open(followers[1], lastID(), "")
			for range 40 {
				ev, ok := sub.next(15 * time.Second)
				if !ok {
					t.Fatalf("subscription on %s ended or stalled after %d outputs", followers[1].id, len(got))
				}
				got = append(got, ev)
			}
			began := time.Now()
			c.stop(followers[1])
			stopTook = time.Since(began)
			for {
				ev, ok := sub.next(5 * time.Second)
				if !ok {
					break // ended (the process is gone), or nothing more within 5 s
				}
				got = append(got, ev)
			}
			sub.close()
			if stopTook > 5*time.Second {
				t.Errorf("SIGTERM of %s with an open subscription took %s", followers[1].id, stopTook)
			}
			c.start(followers[1])
		}
		segments = append(segments, len(got))
	}
	load.finish()
	last := c.waitDelivered(rcv, 30*time.Second)
	read(open(followers[0], lastID(), ""), 0, last)
	if ev, ok := func() (sseEvent, bool) {
		sub := open(followers[0], last, "")
		defer sub.close()
		return sub.next(300 * time.Millisecond)
	}(); ok {
		t.Errorf("resuming after the last output %s gave %s", last, ev.id)
	}
	segments = append(segments, len(got))

	full := c.replay(followers[0], last)
	if len(got) != len(full) {
		t.Errorf("resumed subscriptions read %d outputs, the full replay has %d", len(got), len(full))
	}
	for i := range min(len(got), len(full)) {
		if got[i] != full[i] {
			t.Fatalf("output %d: resumed subscriptions read %+v, the full replay %+v", i, got[i], full[i])
		}
	}
	n := checkAlerts(t, rcv, full, load)
	t.Logf("%d outputs read in %d subscriptions (cumulative counts %v), identical to the replay from earliest; SIGTERM with an open subscription took %s",
		n, len(segments), segments, stopTook.Round(time.Millisecond))
}
