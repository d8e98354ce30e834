package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/siddhiql"
)

// twoNodes starts n1 (leader, with the trade app) and n2 (follower, caught up).
func twoNodes(t *testing.T) (leader, follower *tcpNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	n1 := startTCPNode(t, "n1", true, nil)
	waitFor(t, n1.node.IsLeader, "n1 leads")
	_, idx, err := n1.node.Deploy(ctx, tradeApp)
	if err != nil {
		t.Fatal(err)
	}
	n2 := startTCPNode(t, "n2", false, nil)
	if err := n1.node.Join(ctx, "n2", n2.mux.Addr().String()); err != nil {
		t.Fatal(err)
	}
	waitVoter(t, n1.node, "n2")
	if err := n2.node.WaitApplied(ctx, idx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { id, _, err := n2.node.Leader(); return err == nil && id == "n1" }, "n2 knows n1 leads")
	return n1, n2
}

// internalIngestRequests is how many forwarded batches the leader took.
func internalIngestRequests(t *testing.T, httpAddr string) int {
	t.Helper()
	r := do(t, "GET", "http://"+httpAddr+"/metrics", "")
	total := 0
	re := regexp.MustCompile(`(?m)^tally_http_requests_total\{code="\d+",route="/v1/internal/ingest"\} (\d+)$`)
	for _, m := range re.FindAllStringSubmatch(r.body, -1) {
		n, _ := strconv.Atoi(m[1])
		total += n
	}
	return total
}

// TestForwardBatched: concurrent ingest requests sent to a follower reach the leader in
// fewer batches than requests, each is acknowledged once applied, a retried request is a
// duplicate, and every error a client gets through the follower is the one the leader gives.
func TestForwardBatched(t *testing.T) {
	n1, n2 := twoNodes(t)
	url2 := "http://" + n2.httpAddr + "/v1/streams/TradeStream/events"
	url1 := "http://" + n1.httpAddr + "/v1/streams/TradeStream/events"

	const clients, perClient = 32, 20
	var wg sync.WaitGroup
	errs := make(chan string, clients*perClient)
	for c := range clients {
		wg.Go(func() {
			for i := range perClient {
				ev := fmt.Sprintf(`{"symbol":"s%d","price":1.5,"quantity":1,"timestamp":1514783400000}`, c)
				// A 503 (leadership moved on a busy machine) is retried with the same seq, as a
				// client would: the request then applies at most once, and the count below
				// checks it applied exactly once.
				r := do(t, "POST", url2, ev, "Producer-Id", fmt.Sprintf("p%d", c), "Producer-Seq", strconv.Itoa(i+1))
				retried := false
				for try := 0; r.code == http.StatusServiceUnavailable && try < 50; try++ {
					time.Sleep(100 * time.Millisecond)
					r = do(t, "POST", url2, ev, "Producer-Id", fmt.Sprintf("p%d", c), "Producer-Seq", strconv.Itoa(i+1))
					retried = true
				}
				var ir IngestResponse
				if r.code != 200 || json.Unmarshal([]byte(r.body), &ir) != nil || ir.Events != 1 || (ir.Duplicate && !retried) || ir.Index == 0 {
					errs <- fmt.Sprintf("client %d request %d: %d %s", c, i, r.code, r.body)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := n1.node.FSM().Stats().Events; got != clients*perClient {
		t.Errorf("the leader applied %d events, want %d", got, clients*perClient)
	}
	if b := internalIngestRequests(t, n1.httpAddr); b == 0 || b >= clients*perClient {
		t.Errorf("%d forwarded batches for %d requests", b, clients*perClient)
	} else {
		t.Logf("%d requests in %d batches", clients*perClient, b)
	}

	// A retry through the follower is a duplicate.
	r := do(t, "POST", url2, goodEvent, "Producer-Id", "p0", "Producer-Seq", "1")
	if r.code != 200 || !strings.Contains(r.body, `"duplicate":true`) {
		t.Errorf("retry: %d %s", r.code, r.body)
	}

	// Errors through the follower are the leader's, byte for byte.
	for _, c := range []struct {
		name, path, body string
		headers          []string
	}{
		{name: "wrong type", body: `[` + goodEvent + `,{"symbol":"x","price":"high","quantity":1,"timestamp":1}]`},
		{name: "missing attribute", body: `{"symbol":"x","price":1.0,"timestamp":1}`},
		{name: "malformed NDJSON line", body: goodEvent + "\n{nope}"},
		{name: "empty body", body: " "},
		{name: "unknown stream", path: "/v1/streams/Nope/events", body: goodEvent},
		{name: "producer id without seq", body: goodEvent, headers: []string{"Producer-Id", "p"}},
		{name: "bad seq", body: goodEvent, headers: []string{"Producer-Id", "p", "Producer-Seq", "x"}},
		{name: "seq too old", body: goodEvent, headers: []string{"Producer-Id", "old", "Producer-Seq", "1"}},
	} {
		if c.name == "seq too old" {
			for _, seq := range []string{"5000"} {
				if r := do(t, "POST", url1, goodEvent, "Producer-Id", "old", "Producer-Seq", seq); r.code != 200 {
					t.Fatalf("seed producer: %d %s", r.code, r.body)
				}
			}
		}
		u1, u2 := url1, url2
		if c.path != "" {
			u1, u2 = "http://"+n1.httpAddr+c.path, "http://"+n2.httpAddr+c.path
		}
		a, b := do(t, "POST", u1, c.body, c.headers...), do(t, "POST", u2, c.body, c.headers...)
		if a.code == 200 || a.code != b.code || a.body != b.body || a.header.Get("Content-Type") != b.header.Get("Content-Type") {
			t.Errorf("%s: leader %d %s, follower %d %s", c.name, a.code, a.body, b.code, b.body)
		}
	}
}

// fixedResolver sends every forwarded request to one HTTP address.
type fixedResolver string

func (f fixedResolver) HTTPAddr(context.Context, string) (string, error) { return string(f), nil }

// mapResolver maps Raft addresses to HTTP addresses; set it before use.
type mapResolver struct {
	mu sync.Mutex
	m  map[string]string
}

func (m *mapResolver) set(raftAddr, httpAddr string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]string{}
	}
	m.m[raftAddr] = httpAddr
}

func (m *mapResolver) HTTPAddr(_ context.Context, raftAddr string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.m[raftAddr]; ok {
		return a, nil
	}
	return "", fmt.Errorf("no HTTP address for %s", raftAddr)
}

// noDefs is a node that knows no stream (it holds no replica).
type noDefs struct{}

func (noDefs) StreamDef(context.Context, string) (*siddhiql.StreamDef, bool) { return nil, false }

// TestForwardUndecoded: a node without the stream's schema passes requests to the leader
// undecoded; the leader's answers, errors included, are the ones it gives its own clients.
func TestForwardUndecoded(t *testing.T) {
	n1, n2 := twoNodes(t)
	api := New(Config{NodeID: "n2", StreamDefs: noDefs{}}, []Group{n2.node}, nil, raftnode.NewResolver())
	follower := httptest.NewServer(api)
	defer follower.Close()
	url1, url2 := "http://"+n1.httpAddr+"/v1/streams/TradeStream/events", follower.URL+"/v1/streams/TradeStream/events"
	for i := range 3 {
		r := do(t, "POST", url2, goodEvent, "Producer-Id", "raw", "Producer-Seq", strconv.Itoa(i+1))
		if r.code != 200 || !strings.Contains(r.body, `"events":1`) || !strings.Contains(r.body, `"duplicate":false`) {
			t.Fatalf("request %d: %d %s", i, r.code, r.body)
		}
	}
	if r := do(t, "POST", url2, goodEvent, "Producer-Id", "raw", "Producer-Seq", "3"); r.code != 200 || !strings.Contains(r.body, `"duplicate":true`) {
		t.Errorf("retry: %d %s", r.code, r.body)
	}
	if got := n1.node.FSM().Stats().Events; got != 3 {
		t.Errorf("the leader applied %d events, want 3", got)
	}
	for _, c := range []struct{ name, path, body string }{
		{name: "wrong type", body: `[` + goodEvent + `,{"symbol":"x","price":"high","quantity":1,"timestamp":1}]`},
		{name: "malformed NDJSON line", body: goodEvent + "\n{nope}"},
		{name: "unknown stream", path: "/v1/streams/Nope/events", body: goodEvent},
	} {
		u1, u2 := url1, url2
		if c.path != "" {
			u1, u2 = "http://"+n1.httpAddr+c.path, follower.URL+c.path
		}
		a, b := do(t, "POST", u1, c.body), do(t, "POST", u2, c.body)
		if a.code == 200 || a.code != b.code || a.body != b.body {
			t.Errorf("%s: leader %d %s, follower %d %s", c.name, a.code, a.body, b.code, b.body)
		}
	}
}

// TestForwardRefusedBatch: a leader that refuses the batch route (an older version without
// it) answers nothing of it: the client gets 503 with Retry-After, and nothing is applied.
func TestForwardRefusedBatch(t *testing.T) {
	n1, n2 := twoNodes(t)
	var refused atomic.Int64
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refused.Add(1)
		writeError(w, http.StatusNotFound, "no such endpoint")
	}))
	defer old.Close()
	api := New(Config{NodeID: "n2"}, []Group{n2.node}, nil, fixedResolver(strings.TrimPrefix(old.URL, "http://")))
	follower := httptest.NewServer(api)
	defer follower.Close()
	r := do(t, "POST", follower.URL+"/v1/streams/TradeStream/events", goodEvent, "Producer-Id", "fb", "Producer-Seq", "1")
	if r.code != 503 || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "refused the forwarded parts (404") {
		t.Errorf("through a follower of a leader that refuses batches: %d %s (Retry-After %q)", r.code, r.body, r.header.Get("Retry-After"))
	}
	if refused.Load() == 0 {
		t.Error("the batch route was never tried")
	}
	if got := n1.node.FSM().Stats().Events; got != 0 {
		t.Errorf("the leader applied %d events, want 0", got)
	}
}

// TestForwardDecodedPart: a group's part goes to the leader already decoded; the leader
// checks it against its schema and deduplicates it, and answers typed results.
func TestForwardDecodedPart(t *testing.T) {
	n1, n2 := twoNodes(t)
	s := New(Config{NodeID: "n2"}, []Group{n2.node}, nil, raftnode.NewResolver())
	row := expr.Row{expr.String("wso2"), expr.Double(100), expr.Long(10), expr.Long(1514783400000)}
	part := fsm.Part{Stream: "TradeStream", ProducerID: "split", Seq: 1, Events: []expr.Row{row, row}}
	pr := s.ing.one(t.Context(), groupPart{part: part}, "")
	if pr.code != codeOK || pr.events != 2 || pr.duplicate || pr.index == 0 {
		t.Fatalf("part: %+v", pr)
	}
	if pr := s.ing.one(t.Context(), groupPart{part: part}, ""); pr.code != codeOK || !pr.duplicate {
		t.Errorf("the same part again: %+v", pr)
	}
	if got := n1.node.FSM().Stats().Events; got != 2 {
		t.Errorf("the leader applied %d events, want 2", got)
	}
	bad := fsm.Part{Stream: "TradeStream", Events: []expr.Row{{expr.String("x"), expr.Long(1)}}}
	if pr := s.ing.one(t.Context(), groupPart{part: bad}, ""); pr.code != codeBadRequest || !strings.Contains(pr.msg, "event") {
		t.Errorf("a part that does not fit the leader's schema: %+v", pr)
	}
	unknown := fsm.Part{Stream: "Nope", Events: []expr.Row{row}}
	if pr := s.ing.one(t.Context(), groupPart{part: unknown}, ""); pr.code != codeUnknownStream || !strings.Contains(pr.msg, `unknown stream "Nope"`) {
		t.Errorf("a part of an unknown stream: %+v", pr)
	}
}

// TestForwardLeaderChangeInFlight: a batch whose answer is lost (the leader applied it, the
// connection broke) answers 503 "retry with the same Producer-Id and Producer-Seq", and the
// retry is a duplicate; a batch that reaches a node that no longer leads (leadership moved
// while it was on its way) is sent to the new leader and applied once.
func TestForwardLeaderChangeInFlight(t *testing.T) {
	n1, n2 := twoNodes(t)
	target, _ := neturl.Parse("http://" + n1.httpAddr)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var mode atomic.Int32 // 0 pass, 1 lose the answer, 2 hold until released
	held, release := make(chan struct{}, 1), make(chan struct{})
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/internal/ingest" {
			proxy.ServeHTTP(w, r)
			return
		}
		switch mode.Load() {
		case 1:
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, r) // the leader applies the batch ...
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close() // ... and its answer is lost
			}
			return
		case 2:
			held <- struct{}{}
			<-release
		}
		proxy.ServeHTTP(w, r)
	}))
	defer p.Close()
	res := &mapResolver{}
	res.set(n1.mux.Addr().String(), strings.TrimPrefix(p.URL, "http://"))
	follower := httptest.NewServer(New(Config{NodeID: "n2"}, []Group{n2.node}, nil, res))
	defer follower.Close()
	res.set(n2.mux.Addr().String(), strings.TrimPrefix(follower.URL, "http://"))
	url := follower.URL + "/v1/streams/TradeStream/events"

	mode.Store(1)
	r := do(t, "POST", url, goodEvent, "Producer-Id", "lc", "Producer-Seq", "1")
	if r.code != 503 || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "retry with the same Producer-Id and Producer-Seq") {
		t.Fatalf("a batch whose answer was lost: %d %s", r.code, r.body)
	}
	mode.Store(0)
	if r := do(t, "POST", url, goodEvent, "Producer-Id", "lc", "Producer-Seq", "1"); r.code != 200 || !strings.Contains(r.body, `"duplicate":true`) {
		t.Fatalf("the retry: %d %s", r.code, r.body)
	}
	if got := n1.node.FSM().Stats().Events; got != 1 {
		t.Fatalf("the leader applied %d events, want 1", got)
	}

	mode.Store(2)
	answer := make(chan response, 1)
	go func() { answer <- do(t, "POST", url, goodEvent, "Producer-Id", "lc", "Producer-Seq", "2") }()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the batch never reached the leader")
	}
	mode.Store(0)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := n1.node.Transfer(ctx, "n2"); err != nil {
		close(release)
		t.Fatal(err)
	}
	waitFor(t, n2.node.IsLeader, "n2 leads")
	close(release)
	select {
	case r = <-answer:
	case <-time.After(15 * time.Second):
		t.Fatal("no answer")
	}
	if r.code != 200 || !strings.Contains(r.body, `"duplicate":false`) || !strings.Contains(r.body, `"events":1`) {
		t.Fatalf("a batch that reached the old leader: %d %s", r.code, r.body)
	}
	waitFor(t, func() bool { return n2.node.FSM().Stats().Events == 2 }, "n2 applied both events")
	waitFor(t, func() bool { return n1.node.FSM().Stats().Events == 2 }, "n1 applied both events")
}

// TestForwardedBatchFormat: a batch and its results survive encoding; batches that are not
// well formed are refused, each with an error naming the problem.
func TestForwardedBatchFormat(t *testing.T) {
	row := expr.Row{expr.String("wso2"), expr.Double(100), expr.Long(10), expr.Long(1514783400000)}
	part := fsm.Part{Stream: "TradeStream", ProducerID: "u/p", Seq: 9, Events: []expr.Row{row}}
	batch := []*fwdEntry{
		{part: &part, user: "u"},
		{raw: &rawRequest{stream: "S", producerID: "q", seq: 2, body: []byte(goodEvent)}, split: true},
	}
	data, err := encodeForwarded(batch)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeForwarded(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].user != "u" || got[0].part == nil || got[0].part.ProducerID != "u/p" || len(got[0].part.Events) != 1 ||
		got[1].raw == nil || !got[1].split || got[1].raw.stream != "S" || got[1].raw.seq != 2 || string(got[1].raw.body) != goodEvent {
		t.Fatalf("decoded %+v %+v", got[0], got[1])
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"older format", []byte{1, 0}, "batch format"},
		{"truncated", data[:len(data)-3], "unexpected end of data"},
		{"trailing bytes", append(append([]byte{}, data...), 7), "trailing"},
		{"no entries", func() []byte { d, _ := encodeForwarded(nil); return d }(), "no entries"},
	} {
		if _, err := decodeForwarded(c.data); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", c.name, err, c.want)
		}
	}
	res := [][]partResult{
		{{group: 1, index: 7, events: 1, duplicate: true, event: -1}},
		{{group: 0, code: codeBadRequest, msg: "event 2: bad", event: 2, field: "price", whole: true}, failed(2, codeNotLeader, "moved")},
	}
	back, err := decodeResults(encodeResults(res), 2)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(back) != fmt.Sprint(res) {
		t.Errorf("results %v, want %v", back, res)
	}
	if _, err := decodeResults(encodeResults(res), 3); err == nil {
		t.Error("results for 2 entries taken as 3")
	}
}
