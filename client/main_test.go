package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tally-db/tally/client"
)

// addr is the shared node's base URL, for the examples.
var addr string

// binary is the tally binary built once for the package's tests; tmpDir holds it and the
// shared node's data.
var binary, tmpDir string

func TestMain(m *testing.M) {
	var err error
	if tmpDir, err = os.MkdirTemp("", "tally-client-test-*"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(tmpDir, "tally")
	build := exec.Command("go", "build", "-o", binary, "../cmd/tally")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build tally:", err)
		os.Exit(1)
	}
	c, err := sharedCluster()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start a node:", err)
		os.RemoveAll(tmpDir)
		os.Exit(1)
	}
	addr = c.nodes[0].url()
	code := m.Run()
	if shared.c != nil {
		shared.c.stop()
	}
	os.RemoveAll(tmpDir)
	os.Exit(code)
}

// node is one `tally serve` process on loopback.
type node struct {
	id, httpAddr, raftAddr, dir, log string
	cmd                              *exec.Cmd
	exited                           chan struct{}
}

func (n *node) url() string { return "http://" + n.httpAddr }

// cluster is a set of nodes.
type cluster struct {
	dir   string
	nodes []*node
}

// urls returns the nodes' base URLs.
func (c *cluster) urls() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.url())
	}
	return out
}

// handedOut holds every address freeAddr returned: a port closed at once may be handed out
// again by the next listen.
var handedOut = struct {
	sync.Mutex
	addrs map[string]bool
}{addrs: map[string]bool{}}

func freeAddr() (string, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		a := ln.Addr().String()
		ln.Close()
		if !handedOut.addrs[a] {
			handedOut.addrs[a] = true
			return a, nil
		}
	}
	return "", errors.New("no fresh loopback port in 100 tries")
}

// startCluster starts n nodes hosting groups partition groups in dir: the first
// bootstraps, the others join it. It returns once every node serves and every group has n
// voters.
func startCluster(dir string, n, groups int) (*cluster, error) {
	c := &cluster{dir: dir}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for i := range n {
		nd := &node{id: fmt.Sprintf("n%d", i+1)}
		var err error
		if nd.httpAddr, err = freeAddr(); err == nil {
			nd.raftAddr, err = freeAddr()
		}
		if err != nil {
			c.stop()
			return nil, err
		}
		nd.dir, nd.log = filepath.Join(dir, nd.id), filepath.Join(dir, nd.id+".log")
		args := []string{"serve", "--id", nd.id, "--data-dir", nd.dir, "--http-addr", nd.httpAddr, "--raft-addr", nd.raftAddr}
		if i == 0 {
			args = append(args, "--bootstrap", "--groups", strconv.Itoa(groups))
		} else {
			args = append(args, "--join", c.nodes[0].url())
		}
		logf, err := os.Create(nd.log)
		if err != nil {
			c.stop()
			return nil, err
		}
		nd.cmd = exec.Command(binary, args...)
		nd.cmd.Stdout, nd.cmd.Stderr = logf, logf
		if err := nd.cmd.Start(); err != nil {
			logf.Close()
			c.stop()
			return nil, err
		}
		nd.exited = make(chan struct{})
		go func() { _ = nd.cmd.Wait(); logf.Close(); close(nd.exited) }()
		c.nodes = append(c.nodes, nd)
		if err := poll(15*time.Second, nd.id+" ready", func() bool { return ready(nd) }); err != nil {
			c.stop()
			return nil, err
		}
	}
	cl, err := client.New(c.urls(), client.Options{Timeout: 2 * time.Second})
	if err != nil {
		c.stop()
		return nil, err
	}
	if err := poll(15*time.Second, fmt.Sprintf("%d voters", n), func() bool {
		st, err := cl.NodeStatus(context.Background(), c.nodes[0].url())
		if err != nil || len(st.Groups) != groups {
			return false
		}
		for g := range groups {
			if len(st.Voters(g)) != n {
				return false
			}
		}
		return true
	}); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func ready(nd *node) bool {
	resp, err := http.Get(nd.url() + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// kill sends SIGKILL to nd and waits until it is gone.
func (c *cluster) kill(nd *node) {
	if nd.cmd == nil {
		return
	}
	_ = nd.cmd.Process.Signal(syscall.SIGKILL)
	<-nd.exited
	nd.cmd = nil
}

func (c *cluster) stop() {
	for _, nd := range c.nodes {
		c.kill(nd)
	}
}

// logs returns the last lines of every node's log.
func (c *cluster) logs() string {
	var b strings.Builder
	for _, nd := range c.nodes {
		data, _ := os.ReadFile(nd.log)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		fmt.Fprintf(&b, "---- %s ----\n%s\n", nd.id, strings.Join(lines[max(0, len(lines)-300):], "\n"))
	}
	return b.String()
}

// newCluster starts a cluster of n nodes and groups partition groups for one test. The
// nodes' logs are shown when the test fails, or always with TALLY_TEST_LOGS set.
func newCluster(t *testing.T, n, groups int) *cluster {
	t.Helper()
	c, err := startCluster(t.TempDir(), n, groups)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("TALLY_TEST_LOGS") != "" {
			t.Log(c.logs())
		}
		c.stop()
	})
	return c
}

// shared is the one-node cluster that most tests and the example share, started on first
// use.
var shared struct {
	once sync.Once
	c    *cluster
	err  error
}

func sharedCluster() (*cluster, error) {
	shared.once.Do(func() {
		shared.c, shared.err = startCluster(filepath.Join(tmpDir, "shared"), 1, 1)
	})
	return shared.c, shared.err
}

func sharedNode(t *testing.T) *cluster {
	t.Helper()
	c, err := sharedCluster()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// poll checks cond every 20ms until it holds or timeout passes.
func poll(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// appText is a test app: stream PTrades with a per-symbol aggregation PTotals (sum and
// count of quantity), and a window query whose outputs go to the sink-less stream POut.
func appText(prefix string) string {
	return strings.ReplaceAll(`@app:name('PApp')
define stream PTrades (symbol string, quantity long, timestamp long);
define aggregation PTotals
  from PTrades
  select symbol, sum(quantity) as total, count() as n
  group by symbol
  aggregate by timestamp every sec ... year;
from PTrades#window.length(3)
select symbol, quantity, sum(quantity) as recent
insert into POut;
`, "P", prefix)
}

// deploy deploys appText(prefix) through c.
func deploy(t *testing.T, c *client.Client, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := c.Deploy(ctx, appText(prefix)); err != nil {
		t.Fatal(err)
	}
}

// trade is one event of appText's stream.
type trade struct {
	Symbol    string `json:"symbol"`
	Quantity  int64  `json:"quantity"`
	Timestamp int64  `json:"timestamp"`
}

// totals queries appText(prefix)'s aggregation: per symbol, sum of quantity and count.
func totals(ctx context.Context, c *client.Client, prefix string, opts client.QueryOptions) (map[string][2]int64, error) {
	q := fmt.Sprintf(`from %sTotals within 0L, 9999999999999L per "years" select symbol, total, n`, prefix)
	res, err := c.Query(ctx, prefix+"App", q, opts)
	if err != nil {
		return nil, err
	}
	out := map[string][2]int64{}
	for _, r := range res.Records {
		if len(r) != 3 {
			return nil, fmt.Errorf("record %v has %d columns, want 3", r, len(r))
		}
		sym, _ := r[0].(string)
		tn, ok1 := r[1].(json.Number)
		nn, ok2 := r[2].(json.Number)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("record %v: total and n are not numbers", r)
		}
		total, err1 := tn.Int64()
		n, err2 := nn.Int64()
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		out[sym] = [2]int64{total, n}
	}
	return out, nil
}
