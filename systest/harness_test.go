package systest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tally-db/tally/client"
)

// binary is the tally binary built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tally-systest-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "tally")
	build := exec.Command("go", "build", "-o", binary, "../cmd/tally")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build tally:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is one `tally serve` process and what it needs to be restarted.
type node struct {
	id       string
	httpAddr string
	raftAddr string
	dataDir  string
	args     []string
	cmd      *exec.Cmd
	exited   chan struct{}
	logPath  string
	// alive mirrors cmd != nil for goroutines other than the test's (load generators).
	alive atomic.Bool
}

// cluster is a set of nodes on loopback, stopped at the end of the test.
type cluster struct {
	t     *testing.T
	dir   string
	nodes []*node
	http  *http.Client
	// scheme of the nodes' HTTP API: "http" unless set ("https" for TLS nodes).
	scheme string
}

// url is the address of path on nd's HTTP API.
func (c *cluster) url(nd *node, path string) string {
	scheme := c.scheme
	if scheme == "" {
		scheme = "http"
	}
	return scheme + "://" + nd.httpAddr + path
}

// handedOut holds every address freeAddr returned in this test process: a port closed at
// once can be handed out again by the very next listen, which would give two nodes one
// address.
var handedOut = struct {
	sync.Mutex
	addrs map[string]bool
}{addrs: map[string]bool{}}

// freeAddr returns a loopback address nobody listens on right now and that no earlier call
// returned.
func freeAddr(t *testing.T) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := ln.Addr().String()
		ln.Close()
		if !handedOut.addrs[a] {
			handedOut.addrs[a] = true
			return a
		}
	}
	t.Fatal("no fresh loopback port in 100 tries")
	return ""
}

const tradeApp = `@app:name('TradeApp')
define stream TradeStream (symbol string, price double, quantity long, timestamp long);
define aggregation TradeAggregation
  from TradeStream
  select symbol, avg(price) as avgPrice, sum(quantity) as total, count() as n
  group by symbol
  aggregate by timestamp every sec ... year;
`

// newCluster starts n nodes: the first bootstraps with the trade app, the others join it.
func newCluster(t *testing.T, n int, extra ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), http: &http.Client{Timeout: 10 * time.Second}}
	appFile := filepath.Join(c.dir, "trades.siddhi")
	if err := os.WriteFile(appFile, []byte(tradeApp), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stopAll)
	for i := range n {
		nd := &node{id: fmt.Sprintf("n%d", i+1), httpAddr: freeAddr(t), raftAddr: freeAddr(t)}
		nd.dataDir = filepath.Join(c.dir, nd.id)
		nd.logPath = filepath.Join(c.dir, nd.id+".log")
		nd.args = append([]string{"serve", "--id", nd.id, "--data-dir", nd.dataDir, "--http-addr", nd.httpAddr, "--raft-addr", nd.raftAddr}, extra...)
		if i == 0 {
			nd.args = append(nd.args, "--bootstrap", "--app", appFile)
		} else {
			nd.args = append(nd.args, "--join", "http://"+c.nodes[0].httpAddr)
		}
		c.nodes = append(c.nodes, nd)
		c.start(nd)
		if i == 0 {
			c.waitLeader(10 * time.Second)
			c.eventually(10*time.Second, "app deployed", func() bool {
				var out struct{ Apps []struct{ Name string } }
				return c.getJSON(nd, "/v1/apps", &out) == nil && len(out.Apps) == 1
			})
		}
	}
	// A joined node receives replicas from the controller and is a non-voter until it has
	// caught up: wait for min(n, replicas) voters.
	want := min(n, replicasOf(extra))
	c.eventually(30*time.Second, fmt.Sprintf("%d voters", want), func() bool {
		st, err := c.status(c.nodes[0])
		if err != nil {
			return false
		}
		voters := 0
		for _, m := range st.Groups[0].Members {
			if m.Voter {
				voters++
			}
		}
		return voters == want
	})
	return c
}

// replicasOf is the --replicas value among args (tally serve's default, 3, without one).
func replicasOf(args []string) int {
	for i, a := range args {
		if a == "--replicas" && i+1 < len(args) {
			if r, err := strconv.Atoi(args[i+1]); err == nil {
				return r
			}
		}
	}
	return 3
}

func (c *cluster) start(nd *node) {
	c.t.Helper()
	logf, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(binary, nd.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	nd.cmd, nd.exited = cmd, make(chan struct{})
	nd.alive.Store(true)
	go func() { _ = cmd.Wait(); logf.Close(); close(nd.exited) }()
	c.eventually(10*time.Second, nd.id+" serving HTTP", func() bool {
		resp, err := c.http.Get(c.url(nd, "/healthz"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *cluster) kill(nd *node) { c.signal(nd, syscall.SIGKILL) }

// stop sends SIGTERM (graceful: leadership is handed over) and waits.
func (c *cluster) stop(nd *node) { c.signal(nd, syscall.SIGTERM) }

func (c *cluster) signal(nd *node, sig syscall.Signal) {
	c.t.Helper()
	if nd.cmd == nil {
		return
	}
	nd.alive.Store(false)
	_ = nd.cmd.Process.Signal(sig)
	select {
	case <-nd.exited:
	case <-time.After(15 * time.Second):
		_ = nd.cmd.Process.Kill()
		<-nd.exited
		c.t.Errorf("%s did not exit within 15s of %v", nd.id, sig)
	}
	nd.cmd = nil
}

func (c *cluster) stopAll() {
	for _, nd := range c.nodes {
		if nd.cmd != nil {
			nd.alive.Store(false)
			_ = nd.cmd.Process.Kill()
			<-nd.exited
			nd.cmd = nil
		}
	}
	if c.t.Failed() {
		for _, nd := range c.nodes {
			if b, err := os.ReadFile(nd.logPath); err == nil {
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				c.t.Logf("---- last lines of %s ----\n%s", nd.id, strings.Join(lines[max(0, len(lines)-40):], "\n"))
			}
		}
	}
}

// eventually polls cond until it holds or the timeout passes.
func (c *cluster) eventually(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nodeClient returns a client of nd alone, sending through the cluster's HTTP client (and
// so with its credentials and TLS).
func (c *cluster) nodeClient(nd *node) *client.Client {
	cl, err := client.New([]string{c.url(nd, "")}, client.Options{HTTPClient: c.http})
	if err != nil {
		c.t.Fatalf("client of %s: %v", nd.id, err)
	}
	return cl
}

// status is nd's view of the cluster.
func (c *cluster) status(nd *node) (client.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.nodeClient(nd).Status(ctx)
	if err != nil {
		return client.Status{}, err
	}
	if len(st.Groups) == 0 {
		return *st, fmt.Errorf("no groups in status")
	}
	return *st, nil
}

func (c *cluster) getJSON(nd *node, path string, v any) error {
	resp, err := c.http.Get(c.url(nd, path))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// leader returns the node that leads the group, waiting for one.
func (c *cluster) waitLeader(timeout time.Duration) *node {
	c.t.Helper()
	var leader *node
	c.eventually(timeout, "a leader", func() bool {
		for _, nd := range c.nodes {
			if !nd.alive.Load() {
				continue
			}
			if st, err := c.status(nd); err == nil && st.Groups[0].Role == "leader" {
				leader = nd
				return true
			}
		}
		return false
	})
	return leader
}

// followers returns the running nodes other than leader.
func (c *cluster) followers(leader *node) []*node {
	var out []*node
	for _, nd := range c.nodes {
		if nd != leader && nd.cmd != nil {
			out = append(out, nd)
		}
	}
	return out
}

// ingestResult is what a POST of events answered: a refusal's status and message, or
// 200 and where the events went.
type ingestResult struct {
	code      int
	index     uint64
	duplicate bool
	body      string
}

// ingest posts events (JSON objects) to nd alone, with a producer and seq when producer is
// set. A refusal is a result; only a request that got no answer is an error.
func (c *cluster) ingest(ctx context.Context, nd *node, producer string, seq uint64, events ...string) (ingestResult, error) {
	evs := make([]any, len(events))
	for i, e := range events {
		evs[i] = json.RawMessage(e)
	}
	res, err := c.nodeClient(nd).Ingest(ctx, "TradeStream", evs, client.IngestOptions{ProducerID: producer, Seq: seq})
	var ae *client.APIError
	switch {
	case errors.As(err, &ae):
		return ingestResult{code: ae.Status, body: ae.Message}, nil
	case err != nil:
		return ingestResult{}, err
	}
	return ingestResult{code: http.StatusOK, index: res.Index, duplicate: res.Duplicate}, nil
}

func trade(symbol string, qty int64) string {
	return fmt.Sprintf(`{"symbol":%q,"price":10.0,"quantity":%d,"timestamp":1514783400000}`, symbol, qty)
}

// totals answers sum(quantity) and count per symbol over all time from nd, once nd's
// replica of group 0 has applied minIndex (when not 0).
func (c *cluster) totals(nd *node, consistency string, minIndex uint64) (map[string][2]int64, error) {
	q := `from TradeAggregation within 0L, 9999999999999L per "years" select symbol, total, n`
	opts := client.QueryOptions{Consistency: consistency}
	if minIndex > 0 {
		opts.MinIndex = client.Indexes{0: minIndex}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.nodeClient(nd).Query(ctx, "TradeApp", q, opts)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", nd.id, err)
	}
	m := map[string][2]int64{}
	for _, r := range res.Records {
		total, err1 := r[1].(json.Number).Int64()
		n, err2 := r[2].(json.Number).Int64()
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("query %s: row %v: %w", nd.id, r, err)
		}
		m[r[0].(string)] = [2]int64{total, n}
	}
	return m, nil
}

// stateHash asks nd for its FSM state hash and the index it covers.
func (c *cluster) stateHash(nd *node) (uint64, string, error) {
	var out struct {
		AppliedIndex uint64 `json:"applied_index"`
		StateHash    string `json:"state_hash"`
	}
	err := c.getJSON(nd, "/v1/debug/state", &out)
	return out.AppliedIndex, out.StateHash, err
}
