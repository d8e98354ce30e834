package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tally-db/tally/client"
	"github.com/tally-db/tally/jepsen/proxy"
)

// Build compiles cmd/tally from the module at root into dir with the given build tags and
// returns the binary's path.
func Build(ctx context.Context, root, dir string, tags []string) (string, error) {
	name := "tally"
	if len(tags) > 0 {
		name += "-" + strings.Join(tags, "-")
	}
	bin := filepath.Join(dir, name)
	args := []string{"build", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/tally")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", strings.Join(args[1:], " "), err, out)
	}
	return bin, nil
}

// ModuleRoot finds the directory holding Tally's go.mod, from the working directory up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/tally-db/tally\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the tally module (no go.mod naming github.com/tally-db/tally above the working directory)")
		}
		dir = parent
	}
}

// node is one `tally serve` process and what it takes to start it again.
type node struct {
	id       string
	httpAddr string
	raftAddr string
	dataDir  string
	logPath  string
	// base is every start's arguments but how it enters the cluster: the first node
	// bootstraps it (boot), any other node joins through the running members.
	base []string
	boot bool

	// api is the client of this node alone (the harness picks the node of every request).
	api *client.Client

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
	// member: the node was started and has not been drained out of the cluster since; a
	// member that is not running is down (killed) and comes back with a restart.
	member bool
}

func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// cluster is up to five nodes on loopback whose every node-to-node and store link goes
// through the harness's proxies. Every node's ports and proxies exist from the start; the
// nodes beyond the first three start later (add-node) and may be drained out again.
type cluster struct {
	bin      string
	dir      string
	nodes    []*node // every node slot, members or not
	replicas int     // voters per group
	groups   int
	storeDSN func(proxyAddr string) string
	appFile  string
	mu       sync.Mutex
	drained  []string // nodes drained out of the cluster and not added back
	net      *proxy.Net
	logger   *slog.Logger
	sec      *secure // nil: plain HTTP, no credentials
}

// url is the address of path on n's HTTP API.
func (c *cluster) url(n *node, path string) string {
	return c.sec.scheme() + "://" + n.httpAddr + path
}

// clusterConfig describes the cluster to start.
type clusterConfig struct {
	bin      string
	dir      string
	nodes    int // node slots (3, or 5 for runs that add and drain nodes)
	groups   int
	replicas int // --replicas
	zones    bool
	appFile  string
	storeDSN func(proxyAddr string) string // the store DSN through a proxy address
	storeTgt string                        // the store's real address
	seed     uint64
	logger   *slog.Logger
	secure   bool // TLS and users on every node (Config.Secure)
}

// reserve holds n distinct loopback ports open. The caller closes them just before the
// processes that will bind them start: while they are held, neither a later reservation
// nor a proxy can be handed the same port (a port closed at once can be handed out again
// by the very next listen, which once gave two nodes one address).
func reserve(n int) ([]net.Listener, error) {
	lns := make([]net.Listener, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			closeListeners(lns)
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func closeListeners(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// newCluster lays out the nodes and their proxies; start starts them.
func newCluster(cfg clusterConfig) (*cluster, error) {
	c := &cluster{bin: cfg.bin, dir: cfg.dir, net: proxy.NewNet(cfg.seed, cfg.logger), logger: cfg.logger,
		replicas: cfg.replicas, groups: cfg.groups, storeDSN: cfg.storeDSN, appFile: cfg.appFile}
	var ids []string
	for i := range cfg.nodes {
		ids = append(ids, fmt.Sprintf("n%d", i+1))
	}
	if cfg.secure {
		sec, err := newSecure(cfg.dir, ids)
		if err != nil {
			return nil, err
		}
		c.sec = sec
	}
	held, err := reserve(2 * cfg.nodes)
	if err != nil {
		return nil, err
	}
	// The proxies below listen while the nodes' ports are still held.
	defer closeListeners(held)
	for i := range cfg.nodes {
		h, r := held[2*i].Addr().String(), held[2*i+1].Addr().String()
		id := fmt.Sprintf("n%d", i+1)
		n := &node{id: id, httpAddr: h, raftAddr: r, dataDir: filepath.Join(cfg.dir, id), logPath: filepath.Join(cfg.dir, id+".log")}
		if n.api, err = client.New([]string{c.url(n, "")}, c.sec.clientOptions(5*time.Second)); err != nil {
			c.close()
			return nil, err
		}
		c.nodes = append(c.nodes, n)
	}
	for _, a := range c.nodes {
		var dial []string
		for _, b := range c.nodes {
			if a == b {
				continue
			}
			for _, l := range []struct{ kind, target string }{{"raft", b.raftAddr}, {"http", b.httpAddr}} {
				p, err := c.net.Add(a.id, b.id, l.kind, l.target)
				if err != nil {
					c.close()
					return nil, err
				}
				dial = append(dial, l.target+"="+p.Addr())
			}
		}
		sp, err := c.net.Add(a.id, "db", "store", cfg.storeTgt)
		if err != nil {
			c.close()
			return nil, err
		}
		a.base = []string{"serve", "--id", a.id, "--data-dir", a.dataDir, "--http-addr", a.httpAddr,
			"--raft-addr", a.raftAddr, "--store-dsn", cfg.storeDSN(sp.Addr()), "--log-format", "json",
			"--fault-injection", "--dial-map", strings.Join(dial, ","), "--flush-interval", "500ms"}
		if c.sec != nil {
			a.base = append(a.base, c.sec.args(a.id)...)
		}
		if cfg.zones {
			// Two zones, alternating: every group spans both.
			a.base = append(a.base, "--zone", zoneOf(a.id))
		}
		a.boot = a == c.nodes[0]
	}
	return c, nil
}

// zoneOf is a node's zone in runs with zones: n1, n3, n5 in za; n2, n4 in zb.
func zoneOf(id string) string {
	if (id[len(id)-1]-'0')%2 == 1 {
		return "za"
	}
	return "zb"
}

// args is n's command line for its next start: the first node bootstraps the cluster (and
// keeps the flag on restarts, where its data wins), every other node joins through the
// running members (a node with data of its own ignores --join).
func (c *cluster) args(n *node) []string {
	args := slices.Clone(n.base)
	if n.boot {
		return append(args, "--bootstrap", "--groups", fmt.Sprint(c.groups), "--replicas", fmt.Sprint(c.replicas), "--app", c.appFile)
	}
	var up, all []string
	for _, m := range c.members() {
		if m != n {
			all = append(all, c.url(m, ""))
			if m.running() {
				up = append(up, c.url(m, ""))
			}
		}
	}
	if len(up) == 0 {
		// Every member down (kill-all): a node that has joined before does not join
		// again, and any member will do.
		up = all
	}
	return append(args, "--join", strings.Join(up, ","))
}

// members returns the nodes started and not drained out since, in slot order.
func (c *cluster) members() []*node {
	var out []*node
	for _, n := range c.nodes {
		n.mu.Lock()
		if n.member {
			out = append(out, n)
		}
		n.mu.Unlock()
	}
	return out
}

// pick returns a random member (the workload's choice of node for a request).
func (c *cluster) pick(rng *rand.Rand) *node {
	ms := c.members()
	return ms[rng.IntN(len(ms))]
}

// start starts every node and waits until each group has all of them as voters and the app
// is deployed.
func (c *cluster) start(ctx context.Context, groups int) error {
	for i, n := range c.nodes[:3] {
		if err := c.startNode(ctx, n); err != nil {
			return err
		}
		if i == 0 {
			if err := c.eventually(ctx, 20*time.Second, "the first node leads every group and has the app", func() bool {
				var apps struct{ Apps []struct{ Name string } }
				if c.getJSON(ctx, n, "/v1/apps", &apps) != nil || len(apps.Apps) == 0 {
					return false
				}
				st, err := c.status(ctx, n)
				return err == nil && len(st.Groups) == groups
			}); err != nil {
				return err
			}
		}
	}
	return c.eventually(ctx, 30*time.Second, "3 voters in every group", func() bool {
		st, err := c.status(ctx, c.nodes[0])
		if err != nil || len(st.Groups) != groups {
			return false
		}
		for _, g := range st.Groups {
			// A joined node is a non-voter until it has caught up.
			voters := 0
			for _, m := range g.Members {
				if m.Voter {
					voters++
				}
			}
			if voters != 3 || g.Leader == nil {
				return false
			}
		}
		return true
	})
}

// startNode starts n's process (again) and waits until it serves HTTP.
func (c *cluster) startNode(ctx context.Context, n *node) error {
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.bin, c.args(n)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", n.id, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	n.mu.Lock()
	n.cmd, n.exited, n.paused, n.member = cmd, exited, false, true
	n.mu.Unlock()
	return c.eventually(ctx, 20*time.Second, n.id+" serving HTTP", func() bool {
		select {
		case <-exited:
			return false
		default:
		}
		return c.getJSON(ctx, n, "/healthz", nil) == nil
	})
}

// kill SIGKILLs n and waits for it to be gone.
func (c *cluster) kill(n *node) {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.cmd, n.paused = nil, false
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// pause SIGSTOPs n; resume SIGCONTs it.
func (c *cluster) pause(n *node) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil && !n.paused {
		_ = n.cmd.Process.Signal(syscall.SIGSTOP)
		n.paused = true
	}
}

func (c *cluster) resume(n *node) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil && n.paused {
		_ = n.cmd.Process.Signal(syscall.SIGCONT)
		n.paused = false
	}
}

// close kills every process and closes the proxies.
func (c *cluster) close() {
	for _, n := range c.nodes {
		c.resume(n)
		c.kill(n)
	}
	_ = c.net.Close()
}

// status is n's view of the cluster.
func (c *cluster) status(ctx context.Context, n *node) (*client.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return n.api.Status(ctx)
}

// leader returns the node that leads group g with the highest term among the running,
// unpaused nodes that say so, or nil.
func (c *cluster) leader(ctx context.Context, g int) *node {
	var best *node
	var term uint64
	for _, n := range c.nodes {
		n.mu.Lock()
		up := n.cmd != nil && !n.paused
		n.mu.Unlock()
		if !up {
			continue
		}
		st, err := c.status(ctx, n)
		if err != nil || g >= len(st.Groups) {
			continue
		}
		if gs := st.Groups[g]; gs.Role == "leader" && gs.Term >= term {
			best, term = n, gs.Term
		}
	}
	return best
}

// getJSON GETs path (with its query) from n and decodes the answer into v (nil: ignore it).
func (c *cluster) getJSON(ctx context.Context, n *node, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	b, err := n.api.Call(ctx, http.MethodGet, path, nil, "", nil)
	if err != nil {
		return fmt.Errorf("GET %s on %s: %w", path, n.id, err)
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(b, v)
}

// postJSON POSTs body as JSON to path on n and decodes the answer into v (nil: ignore it).
func (c *cluster) postJSON(ctx context.Context, n *node, path string, body, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	out, err := n.api.Call(ctx, http.MethodPost, path, nil, "application/json", b)
	if err != nil {
		return fmt.Errorf("POST %s on %s: %w", path, n.id, err)
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(out, v)
}

// eventually polls cond every 50ms until it holds, the timeout passes or ctx ends.
func (c *cluster) eventually(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// ids returns the IDs of nodes, sorted.
func ids(nodes []*node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.id
	}
	sort.Strings(out)
	return out
}
