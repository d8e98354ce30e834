package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-db/tally/internal/relaytest"
	"github.com/tally-db/tally/raftnode"
)

func TestDebugClock(t *testing.T) {
	off := httptest.NewServer(New(Config{NodeID: "n9"}, []Group{leaderless{}}, nil, raftnode.NewResolver()))
	defer off.Close()
	for _, m := range []string{"GET", "POST"} {
		if r := do(t, m, off.URL+"/v1/debug/clock", `{"offset_ms":1}`); r.code != 404 || !strings.Contains(r.body, "--fault-injection") {
			t.Errorf("%s /v1/debug/clock without fault injection: %d %s", m, r.code, r.body)
		}
	}

	clk := &raftnode.OffsetClock{}
	_, srv := newSingleNode(t, Config{Clock: clk}, func(c *raftnode.Config) { c.Clock = clk.Now })
	if r := do(t, "GET", srv.URL+"/v1/debug/clock", ""); r.code != 200 || strings.TrimSpace(r.body) != `{"offset_ms":0}` {
		t.Errorf("GET: %d %s", r.code, r.body)
	}
	if r := do(t, "POST", srv.URL+"/v1/debug/clock", `{"offset_ms":-2500}`); r.code != 200 || strings.TrimSpace(r.body) != `{"offset_ms":-2500}` {
		t.Errorf("POST: %d %s", r.code, r.body)
	}
	if got := clk.Offset(); got != -2500*time.Millisecond {
		t.Errorf("offset %v after POST, want -2.5s", got)
	}
	if r := do(t, "GET", srv.URL+"/v1/debug/clock", ""); strings.TrimSpace(r.body) != `{"offset_ms":-2500}` {
		t.Errorf("GET after POST: %d %s", r.code, r.body)
	}
	for _, c := range []struct{ body, want string }{
		{`{"offset_ms":`, "malformed clock request"},
		{`{"offset_ms":"5"}`, "malformed clock request"},
		{`{"offset_ms":1,"skew":2}`, `unknown field \"skew\"`},
		{`{}`, `needs \"offset_ms\"`},
		{`{"offset_ms":9000000000000000}`, "out of range"},
	} {
		if r := do(t, "POST", srv.URL+"/v1/debug/clock", c.body); r.code != 400 || !strings.Contains(r.body, c.want) {
			t.Errorf("POST %s: %d %s; want 400 with %s", c.body, r.code, r.body, c.want)
		}
	}
	if got := clk.Offset(); got != -2500*time.Millisecond {
		t.Errorf("a refused POST changed the offset to %v", got)
	}
}

func TestTransfer_OneNode(t *testing.T) {
	_, srv := newSingleNode(t, Config{})
	for _, c := range []struct {
		query string
		code  int
		want  string
	}{
		{"", 409, "no other voter"},
		{"?to=nope", 400, `\"nope\" is not a voter of group 0 (voters: n1)`},
		{"?group=3", 400, "groups 0 to 0"},
		{"?to=n1", 200, `{"group":0,"leader":"n1"}`},
		{"?group=0&to=n1", 200, `{"group":0,"leader":"n1"}`},
	} {
		if r := do(t, "POST", srv.URL+"/v1/cluster/transfer"+c.query, ""); r.code != c.code || !strings.Contains(r.body, c.want) {
			t.Errorf("transfer%s: %d %s; want %d with %s", c.query, r.code, r.body, c.code, c.want)
		}
	}
	if r := do(t, "GET", srv.URL+"/v1/cluster/transfer", ""); r.code != 405 {
		t.Errorf("GET transfer: %d %s", r.code, r.body)
	}
	none := httptest.NewServer(New(Config{NodeID: "n9"}, []Group{leaderless{}}, nil, raftnode.NewResolver()))
	defer none.Close()
	if r := do(t, "POST", none.URL+"/v1/cluster/transfer", ""); r.code != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("transfer without a leader: %d %s", r.code, r.body)
	}
}

// tcpNode is a node on real ports: a Raft mux, one group and the API.
type tcpNode struct {
	node     *raftnode.Node
	mux      *raftnode.Mux
	httpAddr string
}

func startTCPNode(t *testing.T, id string, bootstrap bool, dial raftnode.Dialer, opts ...func(*Config)) *tcpNode {
	t.Helper()
	return startNode(t, id, bootstrap, nodeSetup{dial: dial, api: opts})
}

// nodeSetup is what varies between the TCP test nodes.
type nodeSetup struct {
	dial    raftnode.Dialer
	muxOpts []raftnode.MuxOption
	api     []func(*Config)
	// serve wraps the API's handler and listener (TLS, say); nil serves them as they are.
	serve func(h http.Handler, cfg Config, ln net.Listener) (http.Handler, net.Listener)
	// resolver is the API's resolver; nil: a plain one dialing through dial.
	resolver func(mux *raftnode.Mux) Resolver
}

// startNode starts a node on real ports: a Raft mux, one group (probing joiners through the
// mux, production timeouts) and the API.
func startNode(t *testing.T, id string, bootstrap bool, o nodeSetup) *tcpNode {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), nil)).With("node", id)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux, err := raftnode.NewMux("127.0.0.1:0", raftnode.Meta{ID: id, HTTPAddr: ln.Addr().String()}, logger,
		append([]raftnode.MuxOption{raftnode.WithDialer(o.dial)}, o.muxOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mux.Close() })
	nc := raftnode.DefaultConfig()
	nc.ID, nc.DataDir, nc.Bootstrap, nc.Logger = id, filepath.Join(t.TempDir(), id), bootstrap, logger
	nc.HeartbeatTimeout, nc.ElectionTimeout, nc.LeaderLeaseTimeout = 400*time.Millisecond, 400*time.Millisecond, 300*time.Millisecond
	nc.Probe = mux.Probe
	n, err := raftnode.Open(nc, raftnode.NewTCPTransport(mux, 0, logger))
	if err != nil {
		t.Fatal(err)
	}
	mux.ServeApplied(func(g uint32) (uint64, bool) { return n.LogApplied(), g == 0 })
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	var res Resolver
	if o.resolver != nil {
		res = o.resolver(mux)
	} else {
		r := raftnode.NewResolver()
		r.Dial = o.dial
		res = r
	}
	cfg := Config{NodeID: id, Logger: logger, DialContext: o.dial}
	for _, f := range o.api {
		f(&cfg)
	}
	var h http.Handler = New(cfg, []Group{n}, nil, res)
	lis := net.Listener(ln)
	if o.serve != nil {
		h, lis = o.serve(h, cfg, ln)
	}
	srv := &http.Server{Handler: h, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Close() })
	return &tcpNode{node: n, mux: mux, httpAddr: ln.Addr().String()}
}

// TestForwardAndTransferThroughDialMap: n2 reaches n1 only through relays named in its dial
// map. Forwarded ingest, the leader's meta lookup and Raft traffic all take the relays, and a
// transfer asked of the follower is forwarded to the leader and answered with the new one.
func TestForwardAndTransferThroughDialMap(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	n1 := startTCPNode(t, "n1", true, nil)
	waitFor(t, n1.node.IsLeader, "n1 leads")
	_, idx, err := n1.node.Deploy(ctx, tradeApp)
	if err != nil {
		t.Fatal(err)
	}
	httpRelay, raftRelay := relaytest.New(t, n1.httpAddr), relaytest.New(t, n1.mux.Addr().String())
	dm := raftnode.DialMap{n1.httpAddr: httpRelay.Addr(), n1.mux.Addr().String(): raftRelay.Addr()}
	n2 := startTCPNode(t, "n2", false, dm.Dialer())
	if err := n1.node.Join(ctx, "n2", n2.mux.Addr().String()); err != nil {
		t.Fatal(err)
	}
	waitVoter(t, n1.node, "n2")
	if err := n2.node.WaitApplied(ctx, idx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { id, _, err := n2.node.Leader(); return err == nil && id == "n1" }, "n2 knows n1 leads")

	r := do(t, "POST", "http://"+n2.httpAddr+"/v1/streams/TradeStream/events", goodEvent)
	if r.code != 200 || !strings.Contains(r.body, `"events":1`) {
		t.Fatalf("ingest on the follower: %d %s", r.code, r.body)
	}
	if httpRelay.Conns() == 0 || raftRelay.Conns() == 0 {
		t.Errorf("forwarded without the map: %d HTTP and %d Raft connections relayed", httpRelay.Conns(), raftRelay.Conns())
	}

	raftBefore := raftRelay.Conns()
	r = do(t, "POST", "http://"+n2.httpAddr+"/v1/cluster/transfer?group=0&to=n2", "")
	var tr TransferResponse
	if r.code != 200 || json.Unmarshal([]byte(r.body), &tr) != nil || tr != (TransferResponse{Group: 0, Leader: "n2"}) {
		t.Fatalf("transfer to n2 asked of n2: %d %s", r.code, r.body)
	}
	waitFor(t, n2.node.IsLeader, "n2 leads")
	r = do(t, "POST", "http://"+n2.httpAddr+"/v1/streams/TradeStream/events", goodEvent)
	if r.code != 200 {
		t.Fatalf("ingest on the new leader: %d %s", r.code, r.body)
	}
	if raftRelay.Conns() == raftBefore {
		t.Error("n2 led without a Raft connection to n1 through the relay")
	}
	// Back again, Raft's pick (the only other voter), asked of the leader itself.
	r = do(t, "POST", "http://"+n2.httpAddr+"/v1/cluster/transfer", "")
	if r.code != 200 || json.Unmarshal([]byte(r.body), &tr) != nil || tr.Leader != "n1" {
		t.Fatalf("transfer asked of the leader: %d %s", r.code, r.body)
	}
	if r := do(t, "POST", "http://"+n1.httpAddr+"/v1/cluster/transfer?to=n3", ""); r.code != 400 || !strings.Contains(r.body, `\"n3\" is not a voter of group 0 (voters: n1, n2)`) {
		t.Errorf("transfer to a non-voter: %d %s", r.code, r.body)
	}
}

// waitVoter waits until node id is a voter in nd's configuration: a joined node is a
// non-voter until it has caught up.
func waitVoter(t *testing.T, nd *raftnode.Node, id string) {
	t.Helper()
	waitFor(t, func() bool {
		for _, m := range nd.Status().Members {
			if m.ID == id && m.Voter {
				return true
			}
		}
		return false
	}, id+" is a voter")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
