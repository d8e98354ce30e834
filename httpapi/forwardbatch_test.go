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

// TestForwardBatchedFallsBack: a leader that refuses the batch route (an older version
// without it) still gets every request, forwarded on its own.
func TestForwardBatchedFallsBack(t *testing.T) {
	n1, n2 := twoNodes(t)
	target, _ := neturl.Parse("http://" + n1.httpAddr)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var refused atomic.Int64
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/internal/ingest" {
			refused.Add(1)
			writeError(w, http.StatusNotFound, "no such endpoint")
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer old.Close()
	api := New(Config{NodeID: "n2"}, []Group{n2.node}, nil, fixedResolver(strings.TrimPrefix(old.URL, "http://")))
	follower := httptest.NewServer(api)
	defer follower.Close()
	for i := range 3 {
		r := do(t, "POST", follower.URL+"/v1/streams/TradeStream/events", goodEvent, "Producer-Id", "fb", "Producer-Seq", strconv.Itoa(i+1))
		if r.code != 200 || !strings.Contains(r.body, `"events":1`) {
			t.Fatalf("request %d through a follower of an older leader: %d %s", i, r.code, r.body)
		}
	}
	if refused.Load() == 0 {
		t.Error("the batch route was never tried")
	}
	// A decoded part goes as NDJSON instead.
	attrs := []siddhiql.Attribute{{Name: "symbol", Type: siddhiql.TypeString}, {Name: "price", Type: siddhiql.TypeDouble},
		{Name: "quantity", Type: siddhiql.TypeLong}, {Name: "timestamp", Type: siddhiql.TypeLong}}
	row := expr.Row{expr.String("wso2"), expr.Double(100), expr.Long(10), expr.Long(1514783400000)}
	part := fsm.Part{Stream: "TradeStream", ProducerID: "fb", Seq: 4, Events: []expr.Row{row}}
	if pr := api.ingestPart(t.Context(), 0, part, attrs, http.Header{"Producer-Id": {"fb"}, "Producer-Seq": {"4"}}); pr.Status != 200 || pr.Events != 1 {
		t.Errorf("a decoded part through a follower of an older leader: %+v", pr)
	}
	if got := n1.node.FSM().Stats().Events; got != 4 {
		t.Errorf("the leader applied %d events, want 4", got)
	}
}

// TestForwardDecodedPart: a group's part of a split request goes to the leader already
// decoded; the leader checks it against its schema and deduplicates it.
func TestForwardDecodedPart(t *testing.T) {
	n1, n2 := twoNodes(t)
	s := New(Config{NodeID: "n2"}, []Group{n2.node}, nil, raftnode.NewResolver())
	attrs := []siddhiql.Attribute{{Name: "symbol", Type: siddhiql.TypeString}, {Name: "price", Type: siddhiql.TypeDouble},
		{Name: "quantity", Type: siddhiql.TypeLong}, {Name: "timestamp", Type: siddhiql.TypeLong}}
	row := expr.Row{expr.String("wso2"), expr.Double(100), expr.Long(10), expr.Long(1514783400000)}
	part := fsm.Part{Stream: "TradeStream", ProducerID: "split", Seq: 1, Events: []expr.Row{row, row}}
	pr := s.ingestPart(t.Context(), 0, part, attrs, http.Header{})
	if pr.Status != 200 || pr.Events != 2 || pr.Duplicate || pr.Index == 0 {
		t.Fatalf("part: %+v", pr)
	}
	if pr := s.ingestPart(t.Context(), 0, part, attrs, http.Header{}); pr.Status != 200 || !pr.Duplicate {
		t.Errorf("the same part again: %+v", pr)
	}
	if got := n1.node.FSM().Stats().Events; got != 2 {
		t.Errorf("the leader applied %d events, want 2", got)
	}
	bad := fsm.Part{Stream: "TradeStream", Events: []expr.Row{{expr.String("x"), expr.Long(1)}}}
	if pr := s.ingestPart(t.Context(), 0, bad, attrs, http.Header{}); pr.Status != 400 || !strings.Contains(pr.Error, "event") {
		t.Errorf("a part that does not fit the leader's schema: %+v", pr)
	}
	unknown := fsm.Part{Stream: "Nope", Events: []expr.Row{row}}
	if pr := s.ingestPart(t.Context(), 0, unknown, attrs, http.Header{}); pr.Status != 404 || !strings.Contains(pr.Error, `unknown stream "Nope"`) {
		t.Errorf("a part of an unknown stream: %+v", pr)
	}
}
