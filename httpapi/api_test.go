package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/raftnode"
)

const tradeApp = `@app:name('TradeApp')
define stream TradeStream (symbol string, price double, quantity long, timestamp long);
define aggregation TradeAggregation
  from TradeStream
  select symbol, avg(price) as avgPrice, sum(quantity) as total
  group by symbol
  aggregate by timestamp every sec ... year;
`

// newSingleNode starts a one-voter group in-process with the trade app and serves the API.
func newSingleNode(t testing.TB, cfg Config, opts ...func(*raftnode.Config)) (*raftnode.Node, *httptest.Server) {
	t.Helper()
	_, trans := raft.NewInmemTransport("")
	nc := raftnode.DefaultConfig()
	nc.ID, nc.DataDir, nc.Bootstrap, nc.ShardID = "n1", t.TempDir(), true, "shard-1"
	nc.HeartbeatTimeout, nc.ElectionTimeout, nc.LeaderLeaseTimeout = 100*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
	nc.TickInterval = time.Hour // no ticks: the applied index moves only with the test's requests
	nc.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	for _, o := range opts {
		o(&nc)
	}
	n, err := raftnode.Open(nc, trans)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	deadline := time.Now().Add(10 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for n.ShardID() != "shard-1" { // replicated by the new leader: wait, so it moves no index later
		if time.Now().After(deadline) {
			t.Fatal("shard ID not replicated")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, _, err := n.Deploy(t.Context(), tradeApp); err != nil {
		t.Fatal(err)
	}
	cfg.NodeID, cfg.Logger = "n1", nc.Logger
	srv := httptest.NewServer(New(cfg, []Group{n}, nil, raftnode.NewResolver()))
	t.Cleanup(srv.Close)
	return n, srv
}

type response struct {
	code   int
	body   string
	header http.Header
}

func do(t testing.TB, method, url, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{code: resp.StatusCode, body: string(b), header: resp.Header}
}

const goodEvent = `{"symbol":"wso2","price":100.0,"quantity":10,"timestamp":1514783400000}`

// totalQuery answers the total over everything, as the store API does.
const totalQuery = `{"appName":"TradeApp","query":"from TradeAggregation within 0L, 9999999999999L per \"years\" select symbol, total"}`

func TestIngestBadInputChangesNothing(t *testing.T) {
	n, srv := newSingleNode(t, Config{MaxBodyBytes: 4096})
	url := srv.URL + "/v1/streams/TradeStream/events"
	before := n.FSM().AppliedIndex()
	cases := []struct {
		name, body string
		headers    []string
		url        string
		code       int
		msg        string
	}{
		{name: "malformed array", body: `[{"symbol":`, code: 400, msg: "malformed JSON array"},
		{name: "malformed NDJSON line", body: goodEvent + "\n{nope}", code: 400, msg: `event 1: malformed JSON`},
		{name: "wrong type", body: `[` + goodEvent + `,{"symbol":"x","price":"high","quantity":1,"timestamp":1}]`, code: 400, msg: `"error":"event 1: attribute \"price\": want a number (double), got a string","event":1,"field":"price"`},
		{name: "missing attribute", body: `{"symbol":"x","price":1.0,"timestamp":1}`, code: 400, msg: `attribute \"quantity\": missing`},
		{name: "unknown attribute", body: `{"symbol":"x","price":1.0,"quantity":1,"timestamp":1,"venue":"y"}`, code: 400, msg: `attribute \"venue\": not an attribute of the stream`},
		{name: "not an object", body: `[1]`, code: 400, msg: "not a JSON object"},
		{name: "empty body", body: "  ", code: 400, msg: "has no events"},
		{name: "empty array", body: "[]", code: 400, msg: "has no events"},
		{name: "oversized body", body: `[` + strings.Repeat(goodEvent+",", 100) + goodEvent + `]`, code: 413, msg: "over the 4096-byte limit"},
		{name: "unknown stream", url: srv.URL + "/v1/streams/Nope/events", body: goodEvent, code: 404, msg: `unknown stream \"Nope\"`},
		{name: "producer id without seq", body: goodEvent, headers: []string{"Producer-Id", "p"}, code: 400, msg: "go together"},
		{name: "bad seq", body: goodEvent, headers: []string{"Producer-Id", "p", "Producer-Seq", "-3"}, code: 400, msg: "not an unsigned integer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := url
			if c.url != "" {
				u = c.url
			}
			r := do(t, "POST", u, c.body, c.headers...)
			if r.code != c.code || !strings.Contains(r.body, c.msg) {
				t.Errorf("got %d %s; want %d containing %s", r.code, r.body, c.code, c.msg)
			}
			if got := n.FSM().AppliedIndex(); got != before {
				t.Errorf("a refused request moved the applied index %d → %d", before, got)
			}
		})
	}
	if r := do(t, "POST", srv.URL+"/stores/query", totalQuery); r.code != 200 || r.body != `{"records":[]}`+"\n" {
		t.Errorf("after refused requests: %d %s, want no records", r.code, r.body)
	}
}

func TestIngestAndQuery(t *testing.T) {
	_, srv := newSingleNode(t, Config{})
	url := srv.URL + "/v1/streams/TradeStream/events"
	r := do(t, "POST", url, `[`+goodEvent+`,`+goodEvent+`]`, "Producer-Id", "p1", "Producer-Seq", "1")
	var ack IngestResponse
	if r.code != 200 || json.Unmarshal([]byte(r.body), &ack) != nil || ack.Events != 2 || ack.Duplicate || ack.Index == 0 {
		t.Fatalf("ingest: %d %s", r.code, r.body)
	}
	// The same producer seq again: acknowledged as a duplicate, not counted.
	r = do(t, "POST", url, `[`+goodEvent+`,`+goodEvent+`]`, "Producer-Id", "p1", "Producer-Seq", "1")
	if r.code != 200 || !strings.Contains(r.body, `"duplicate":true`) {
		t.Fatalf("retry: %d %s", r.code, r.body)
	}
	// NDJSON works too.
	if r = do(t, "POST", url, goodEvent+"\n"+goodEvent+"\n", "Content-Type", "application/x-ndjson"); r.code != 200 {
		t.Fatalf("ndjson: %d %s", r.code, r.body)
	}
	if r = do(t, "POST", srv.URL+"/stores/query", totalQuery); r.body != `{"records":[["wso2",40]]}`+"\n" {
		t.Errorf("query: %d %s", r.code, r.body)
	}
	r = do(t, "POST", srv.URL+"/stores/query?consistency=stale", `{"appName":"TradeApp","details":true,"query":"from TradeAggregation within 0L, 9999999999999L per 'hours' select symbol, avgPrice"}`)
	if want := `{"records":[["wso2",100.0]],"details":[{"name":"symbol","dataType":"STRING"},{"name":"avgPrice","dataType":"DOUBLE"}]}` + "\n"; r.body != want {
		t.Errorf("details: %s, want %s", r.body, want)
	}
	r = do(t, "GET", srv.URL+"/v1/aggregations/TradeAggregation?within=2018-01-01+**:**:**&per=hours&select=symbol,total", "")
	if want := `{"records":[{"symbol":"wso2","total":40}]}` + "\n"; r.code != 200 || r.body != want {
		t.Errorf("GET aggregation: %d %s, want %s", r.code, r.body, want)
	}
	r = do(t, "GET", srv.URL+"/v1/aggregations/TradeAggregation?within=0,9999999999999&per=days&min_index="+itoa(ack.Index), "")
	if r.code != 200 || !strings.Contains(r.body, `"AGG_TIMESTAMP":1514764800000`) {
		t.Errorf("GET aggregation select *: %d %s", r.code, r.body)
	}
}

func itoa(i uint64) string { b, _ := json.Marshal(i); return string(b) }

func TestStoreQueryErrors(t *testing.T) {
	_, srv := newSingleNode(t, Config{})
	cases := []struct {
		body, url string
		code      int
		want      string
	}{
		{body: `{"appName":`, code: 400, want: `"type":"error","message":"malformed JSON request`},
		{body: `{"appName":"TradeApp","query":" "}`, code: 400, want: `{"type":"error","message":"Query cannot be empty or null"}`},
		{body: `{"query":"from X"}`, code: 400, want: `{"type":"error","message":"Siddhi app name cannot be empty or null"}`},
		{body: `{"appName":"Nope","query":"from X within 0L, 1L per 'hours'"}`, code: 404, want: `{"type":"error","message":"Cannot find an active SiddhiApp with name: Nope"}`},
		{body: `{"appName":"TradeApp","query":"from TradeAggregation select *"}`, code: 400, want: `{"type":"error","message":"siddhiql: 1:23: store query on an aggregation needs 'within'"}`},
		{body: `{"appName":"TradeApp","query":"from TradeAggregation within 0L, 1L per 'weeks'"}`, code: 400, want: `"message":"siddhiql: 1:`},
		{body: totalQuery, url: "/stores/query?consistency=eventually", code: 400, want: `unknown consistency \"eventually\"`},
	}
	for _, c := range cases {
		u := "/stores/query"
		if c.url != "" {
			u = c.url
		}
		if r := do(t, "POST", srv.URL+u, c.body); r.code != c.code || !strings.Contains(r.body, c.want) {
			t.Errorf("%s: got %d %s; want %d containing %s", c.body, r.code, r.body, c.code, c.want)
		}
	}
	if r := do(t, "GET", srv.URL+"/v1/aggregations/TradeAggregation?per=hours", ""); r.code != 400 || !strings.Contains(r.body, "within and per are required") {
		t.Errorf("GET without within: %d %s", r.code, r.body)
	}
	if r := do(t, "GET", srv.URL+"/v1/aggregations/Nope?within=0,1&per=hours", ""); r.code != 404 {
		t.Errorf("GET unknown aggregation: %d %s", r.code, r.body)
	}
}

func TestApps(t *testing.T) {
	n, srv := newSingleNode(t, Config{})
	before := n.FSM().AppliedIndex()
	bad := []struct{ body, want string }{
		{"@app:name('X')\ndefine stream S (a int)\nfrom S select a insert into", `siddhiql: 3:`},
		{"define stream S (a int);", "needs a name"},
		{"@app:name('Y') define stream TradeStream (a int);", "already defined by app TradeApp"},
		{"   ", "must be the SiddhiQL text"},
	}
	for _, c := range bad {
		if r := do(t, "POST", srv.URL+"/v1/apps", c.body); r.code != 400 || !strings.Contains(r.body, c.want) {
			t.Errorf("deploy %q: %d %s; want 400 with %s", c.body, r.code, r.body, c.want)
		}
	}
	if got := n.FSM().AppliedIndex(); got != before {
		t.Errorf("invalid apps moved the applied index %d → %d", before, got)
	}
	if r := do(t, "POST", srv.URL+"/v1/apps", "@app:name('Other') define stream S2 (a int);"); r.code != 201 || !strings.Contains(r.body, `"name":"Other"`) {
		t.Fatalf("deploy: %d %s", r.code, r.body)
	}
	if r := do(t, "GET", srv.URL+"/v1/apps", ""); !strings.Contains(r.body, `"name":"Other"`) || !strings.Contains(r.body, `"aggregations":["TradeAggregation"]`) {
		t.Errorf("list: %s", r.body)
	}
	if r := do(t, "DELETE", srv.URL+"/v1/apps/Nope", ""); r.code != 404 {
		t.Errorf("delete unknown: %d %s", r.code, r.body)
	}
	if r := do(t, "DELETE", srv.URL+"/v1/apps/Other", ""); r.code != 200 {
		t.Errorf("delete: %d %s", r.code, r.body)
	}
	n.FSM().Read(func(e fsm.View) {
		if _, ok := e.App("Other"); ok {
			t.Error("deleted app still deployed")
		}
	})
}

func TestClusterEndpoints(t *testing.T) {
	_, srv := newSingleNode(t, Config{})
	for _, c := range []struct{ body, want string }{
		{`{"id":`, "malformed join request"},
		{`{"id":"n2"}`, `join needs \"id\" and \"raft_addr\"`},
		{`{"id":"n2","raft_addr":"x","extra":1}`, "unknown field"},
	} {
		if r := do(t, "POST", srv.URL+"/v1/cluster/join", c.body); r.code != 400 || !strings.Contains(r.body, c.want) {
			t.Errorf("join %s: %d %s", c.body, r.code, r.body)
		}
	}
	r := do(t, "GET", srv.URL+"/v1/cluster/status", "")
	var st ClusterStatus
	if err := json.Unmarshal([]byte(r.body), &st); err != nil || st.ID != "n1" || len(st.Groups) != 1 || st.Groups[0].Role != "leader" ||
		st.Groups[0].ShardID != "shard-1" || st.Groups[0].Leader == nil || st.Groups[0].Leader.ID != "n1" || len(st.Groups[0].Members) != 1 ||
		st.Groups[0].LogStore != raftnode.LogStoreWAL {
		t.Errorf("status: %s (%v)", r.body, err)
	}
	for path, code := range map[string]int{"/healthz": 200, "/readyz": 200, "/v1/debug/state": 200, "/nope": 404} {
		if r := do(t, "GET", srv.URL+path, ""); r.code != code {
			t.Errorf("GET %s: %d %s", path, r.code, r.body)
		}
	}
	if r := do(t, "PUT", srv.URL+"/v1/apps", ""); r.code != 405 || !strings.Contains(r.body, "not allowed") {
		t.Errorf("PUT /v1/apps: %d %s", r.code, r.body)
	}
	do(t, "POST", srv.URL+"/v1/streams/TradeStream/events", goodEvent)
	if r := do(t, "GET", srv.URL+"/metrics", ""); !strings.Contains(r.body, `tally_http_requests_total{code="200",route="/v1/streams/{stream}/events"} 1`) ||
		!strings.Contains(r.body, "tally_raft_is_leader 1") || !strings.Contains(r.body, "tally_ingest_events_total 1") {
		t.Errorf("metrics lack the expected series:\n%s", r.body)
	}
}

// leaderless is a Group with no leader anywhere: every write must get 503 + Retry-After.
type leaderless struct{}

func (leaderless) Ingest(context.Context, []fsm.Part) (*raftnode.IngestResult, error) {
	return nil, raftnode.ErrNotLeader
}
func (leaderless) Deploy(context.Context, string) (string, uint64, error) {
	return "", 0, raftnode.ErrNotLeader
}
func (leaderless) Undeploy(context.Context, string) (uint64, error) { return 0, raftnode.ErrNotLeader }
func (leaderless) Read(_ context.Context, c raftnode.Consistency, _ uint64, fn func(fsm.View)) error {
	if c == raftnode.Linearizable {
		return raftnode.ErrNotLeader
	}
	e, _ := engine.New(engine.Config{})
	_, _ = e.Deploy(tradeApp)
	fn(fsm.ViewOf(e))
	return nil
}
func (leaderless) MemoryRows(_ context.Context, c raftnode.Consistency, _ uint64, app, q string) (*agg.Plan, []agg.ShardRow, error) {
	e, _ := engine.New(engine.Config{})
	_, _ = e.Deploy(tradeApp)
	p, err := e.Plan(app, q)
	if c == raftnode.Linearizable {
		return p, nil, raftnode.ErrNotLeader
	}
	return p, nil, err
}
func (leaderless) Join(context.Context, string, string) error { return raftnode.ErrNotLeader }
func (leaderless) Remove(context.Context, string) error       { return raftnode.ErrNotLeader }
func (leaderless) Status() raftnode.Status                    { return raftnode.Status{Role: "candidate"} }
func (leaderless) Ready() bool                                { return false }
func (leaderless) IsLeader() bool                             { return false }
func (leaderless) StateHash() (uint64, string, error)         { return 0, "", nil }
func (leaderless) Transfer(context.Context, string) (string, error) {
	return "", raftnode.ErrNotLeader
}

func TestNoLeaderAnswers503(t *testing.T) {
	srv := httptest.NewServer(New(Config{NodeID: "n9"}, []Group{leaderless{}}, nil, raftnode.NewResolver()))
	defer srv.Close()
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/streams/TradeStream/events", goodEvent},
		{"POST", "/stores/query", totalQuery},
		{"POST", "/v1/apps", "@app:name('Z') define stream Z (a int);"},
		{"DELETE", "/v1/apps/TradeApp", ""},
		{"POST", "/v1/cluster/join", `{"id":"n2","raft_addr":"127.0.0.1:1"}`},
		{"GET", "/readyz", ""},
	} {
		r := do(t, c.method, srv.URL+c.path, c.body)
		if r.code != 503 || r.header.Get("Retry-After") == "" {
			t.Errorf("%s %s: %d %s (Retry-After %q); want 503 with Retry-After", c.method, c.path, r.code, r.body, r.header.Get("Retry-After"))
		}
	}
	// A stale read needs no leader.
	if r := do(t, "POST", srv.URL+"/stores/query?consistency=stale", totalQuery); r.code != 200 {
		t.Errorf("stale read without a leader: %d %s", r.code, r.body)
	}
}
