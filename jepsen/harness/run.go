// Package harness runs Tally's fault-injection tests: it starts real `tally serve`
// processes and a real MariaDB on loopback, puts every node-to-node and store link behind a
// proxy it controls, drives a recorded workload while a nemesis injects faults on a seeded
// schedule, heals everything, and judges the history with package check.
package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tally-db/tally/jepsen/check"
)

// Config is one run.
type Config struct {
	Name     string        // report subdirectory, e.g. "kill-leader-g3-s1"
	Seed     int64         // fixes the fault schedule and the workload's choices
	Groups   int           // partition groups (1 or 3)
	Nemesis  string        // one of Nemeses, or Mixed
	Duration time.Duration // how long faults are injected (the run takes longer: setup, heal, drain, checks)
	Bin      string        // the tally binary
	Report   string        // directory the run's report directory goes in
	// Store returns a fresh MySQL store DSN (mysql://user@tcp(HOST:PORT)/db) for the run and
	// the store's host:port, which the harness proxies.
	Store  func(ctx context.Context, name string) (dsn, addr string, err error)
	Logger *slog.Logger
	// Secure turns on TLS (--tls-cert, --tls-key, --tls-ca: HTTPS and mutual TLS between
	// nodes) and users (--auth) on every node; the harness then talks HTTPS with
	// credentials.
	Secure bool
}

// Result is a run's outcome.
type Result struct {
	Config   Config
	Dir      string
	History  *check.History
	Verdicts []check.Verdict
	Elapsed  time.Duration
	Err      error // the run itself could not be carried out (setup failed, cluster never healed)
}

// Passed reports whether the run was carried out and every checker passed.
func (r *Result) Passed() bool { return r.Err == nil && check.Passed(r.Verdicts) }

const (
	replicas  = 3 // voters per group (--replicas)
	producers = 8
	readers   = 2
	keys      = 12
)

// Run carries out one run and writes its report directory: history.json, verdicts.json,
// linearizability.html, run.log and each node's log.
func Run(ctx context.Context, cfg Config) *Result {
	begin := time.Now()
	res := &Result{Config: cfg, Dir: filepath.Join(cfg.Report, cfg.Name)}
	res.History, res.Err = run(ctx, cfg, res.Dir)
	if res.History != nil {
		if err := check.Save(filepath.Join(res.Dir, "history.json"), res.History); err != nil && res.Err == nil {
			res.Err = err
		}
		res.Verdicts = check.All(res.History, res.Dir)
	}
	res.Elapsed = time.Since(begin)
	if b, err := json.MarshalIndent(map[string]any{"name": cfg.Name, "seed": cfg.Seed, "groups": cfg.Groups, "nemesis": cfg.Nemesis,
		"elapsed_s": res.Elapsed.Seconds(), "error": errString(res.Err), "verdicts": res.Verdicts}, "", "  "); err == nil {
		_ = os.WriteFile(filepath.Join(res.Dir, "verdicts.json"), b, 0o644)
	}
	return res
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func run(ctx context.Context, cfg Config, dir string) (*check.History, error) {
	if !ValidNemesis(cfg.Nemesis) {
		return nil, fmt.Errorf("unknown nemesis %q", cfg.Nemesis)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "run.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	var handler slog.Handler = slog.NewTextHandler(logf, nil)
	if cfg.Logger != nil {
		handler = teeHandler{cfg.Logger.Handler(), handler}
	}
	logger := slog.New(handler).With("run", cfg.Name)
	seed := uint64(cfg.Seed)
	rec := &recorder{h: check.History{Seed: cfg.Seed, AlertStream: alertStream, AlertMin: alertMin, Replication: replicas}}

	rcv, err := newReceiver(rec, seed)
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	appFile := filepath.Join(dir, "jepsen.siddhi")
	if err := os.WriteFile(appFile, fmt.Appendf(nil, appText, rcv.url(), alertMin), 0o644); err != nil {
		return nil, err
	}
	dsn, storeAddr, err := cfg.Store(ctx, fmt.Sprintf("jepsen_%d", time.Now().UnixNano()))
	if err != nil {
		return nil, err
	}
	scale := scaleRun(cfg.Nemesis)
	slots := 3
	if scale {
		slots = 5
	}
	c, err := newCluster(clusterConfig{bin: cfg.Bin, dir: dir, nodes: slots, groups: cfg.Groups, replicas: replicas, zones: scale, appFile: appFile,
		storeTgt: storeAddr, storeDSN: func(p string) string { return replaceAddr(dsn, storeAddr, p) }, seed: seed, logger: logger, secure: cfg.Secure})
	if err != nil {
		return nil, err
	}
	defer func() {
		c.close()
		for _, n := range c.nodes {
			_ = os.RemoveAll(n.dataDir)
		}
	}()
	logger.Info("starting cluster", "groups", cfg.Groups, "nemesis", cfg.Nemesis, "seed", cfg.Seed, "secure", cfg.Secure)
	if err := c.start(ctx, cfg.Groups); err != nil {
		return nil, fmt.Errorf("start the cluster: %w", err)
	}
	// The map records the voters of groups that grew while the first nodes joined once
	// their moves finish: sampling starts from a settled map.
	if err := c.waitSettled(ctx, settleTimeout, "the first three nodes", nil); err != nil {
		return nil, fmt.Errorf("start the cluster: %w", err)
	}
	// Membership runs start with four members (drain-node with five, add-node with three),
	// so that a node can be added and one drained from the first fault on.
	extra := 0
	switch {
	case cfg.Nemesis == "drain-node":
		extra = 2
	case scale && cfg.Nemesis != "add-node":
		extra = 1
	}
	for _, n := range c.nodes[3 : 3+extra] {
		if err := c.addNode(ctx, n); err != nil {
			return nil, fmt.Errorf("start the cluster: add %s: %w", n.id, err)
		}
		if err := c.waitSettled(ctx, settleTimeout, n.id+" in the map", func(m *clusterMap) bool { return m.has(n.id) }); err != nil {
			return nil, fmt.Errorf("start the cluster: %w", err)
		}
	}

	rec.start = time.Now()
	w := newWorkload(c, rec, seed, cfg.Groups, keys)
	issue, stopIssue := context.WithCancel(ctx)
	defer stopIssue()
	retry, stopRetry := context.WithCancel(ctx)
	defer stopRetry()
	watch, stopWatch := context.WithCancel(ctx)
	defer stopWatch()

	var prod, bg sync.WaitGroup
	for p := range producers {
		prod.Go(func() { w.producer(issue, retry, p) })
	}
	for r := range readers {
		bg.Go(func() { w.reader(issue, producers+r) })
	}
	bg.Go(func() { w.storeSampler(issue) })
	for _, n := range c.nodes {
		bg.Go(func() { w.replicaSampler(watch, n, 300*time.Millisecond) })
	}
	bg.Go(func() { w.mapSampler(watch, 250*time.Millisecond, 40*time.Millisecond) })
	subs := make([][]check.Output, cfg.Groups)
	for g := range cfg.Groups {
		bg.Go(func() { subs[g] = w.subscriber(watch, g) })
	}

	nm := &nemesis{c: c, rec: rec, rng: rand.New(rand.NewPCG(seed, 1)), kinds: []string{cfg.Nemesis}, groups: cfg.Groups, zones: scale}
	fctx, stopFaults := context.WithTimeout(ctx, cfg.Duration)
	nm.run(fctx)
	stopFaults()
	logger.Info("faults over; healing")
	healErr := nm.healAll(context.WithoutCancel(ctx))
	if healErr == nil {
		healErr = c.eventually(ctx, 30*time.Second, "a leader in every group", func() bool {
			for g := range cfg.Groups {
				if c.leader(ctx, g) == nil {
					return false
				}
			}
			return true
		})
	}
	if healErr == nil {
		// A few seconds of load on the healed cluster, so that every fault, the last one
		// included, is followed by fresh writes the failover figures can be measured with.
		sleep(ctx, 3*time.Second)
	}
	// Producers stop taking new work; their unknown ops get until the drain deadline.
	stopIssue()
	drained := make(chan struct{})
	go func() { prod.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(30 * time.Second):
		logger.Warn("producers still retrying after 30s; their ops stay unknown")
	}
	stopRetry()
	<-drained
	if healErr != nil {
		stopWatch()
		bg.Wait()
		return finish(rec, subs), fmt.Errorf("heal the cluster: %w", healErr)
	}

	err = finalReads(ctx, c, w, rcv, rec, cfg.Groups, logger)
	if err == nil {
		err = finalPlacement(ctx, c, rec)
	}
	if err == nil {
		if derr := diagnoseStore(ctx, dir, dsn, w, rec.h.FinalLive, rec.h.FinalStored); derr != nil {
			logger.Warn("could not write the store mismatch report", "err", derr)
		}
	}
	if err == nil && len(nm.failed) > 0 {
		err = fmt.Errorf("a node did not come back after a restart: %s", strings.Join(nm.failed, "; "))
	}
	stopWatch()
	bg.Wait()
	h := finish(rec, subs)
	return h, err
}

func finish(rec *recorder, subs [][]check.Output) *check.History {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	h := rec.h
	h.Subscribed = subs
	slices.SortFunc(h.Ops, func(a, b check.Op) int { return a.ID - b.ID })
	return &h
}

// finalReads records the final live and stored counts, waits for the sinks to go quiet,
// reads the retained Bursts and samples every replica until each group has been compared.
func finalReads(ctx context.Context, c *cluster, w *workload, rcv *receiver, rec *recorder, groups int, logger *slog.Logger) error {
	var live check.Counts
	if err := c.eventually(ctx, 20*time.Second, "the final live counts", func() bool {
		var err error
		ms := c.members()
		live, err = w.counts(ctx, ms[0], "linearizable")
		return err == nil
	}); err != nil {
		return err
	}
	var stored check.Counts
	var lastErr error
	try := 0
	if err := c.eventually(ctx, 20*time.Second, "stored counts equal to the live ones", func() bool {
		// Through the members in turn, from the last (the query is routed wherever the
		// group's replicas are).
		ms := c.members()
		n := ms[len(ms)-1-try%len(ms)]
		try++
		s, err := w.counts(ctx, n, "stored")
		if err == nil {
			stored = s
		} else {
			lastErr = err
			logger.Info("final stored read failed; trying the next member", "node", n.id, "err", err)
		}
		return err == nil && countsEqual(s, live)
	}); err != nil {
		logger.Warn("final stored counts", "err", err, "last_query_err", lastErr)
	}
	if err := c.eventually(ctx, 90*time.Second, "every sink to deliver its backlog", func() bool {
		return w.sinksDelivered(ctx, groups)
	}); err != nil {
		return err
	}
	var retained []check.Output
	for g := range groups {
		// Leadership may be moving (the controller balances leaders after a membership
		// change): wait for the group's leader a little.
		var l *node
		_ = c.eventually(ctx, 10*time.Second, fmt.Sprintf("a leader of group %d", g), func() bool {
			l = c.leader(ctx, g)
			return l != nil
		})
		if l == nil {
			return fmt.Errorf("no leader of group %d to read the retained outputs from", g)
		}
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		got, err := w.follow(rctx, l, g, "earliest", -1, time.Second)
		cancel()
		if err != nil {
			return fmt.Errorf("read the retained %s of group %d: %w", burstStream, g, err)
		}
		retained = append(retained, got...)
	}
	// Replicas: sample until every group has two nodes at the same index (ticks move the
	// index once a second, so quiet moments come quickly).
	_ = c.eventually(ctx, 15*time.Second, "two replicas of every group at the same index", func() bool {
		for _, n := range c.nodes {
			w.sampleReplica(ctx, n)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return comparedEveryGroup(rec.h.Replicas, groups)
	})
	rec.mu.Lock()
	rec.h.FinalLive, rec.h.FinalStored, rec.h.Retained = live, stored, retained
	rec.h.Alerts = rcv.outputs()
	rec.mu.Unlock()
	logger.Info("final reads done", "keys", len(live), "alerts", len(rec.h.Alerts), "retained", len(retained))
	return nil
}

func countsEqual(a, b check.Counts) bool {
	return maps.EqualFunc(a, b, func(x, y map[int64]int64) bool { return maps.Equal(x, y) })
}

func comparedEveryGroup(samples []check.ReplicaSample, groups int) bool {
	type gi struct {
		g   int
		idx uint64
	}
	nodes := map[gi]map[string]bool{}
	done := map[int]bool{}
	for _, s := range samples {
		k := gi{s.Group, s.Index}
		if nodes[k] == nil {
			nodes[k] = map[string]bool{}
		}
		nodes[k][s.Node] = true
		if len(nodes[k]) >= 2 {
			done[s.Group] = true
		}
	}
	return len(done) == groups
}

// replaceAddr swaps the store address in dsn for the proxy's.
func replaceAddr(dsn, from, to string) string {
	return strings.Replace(dsn, "tcp("+from+")", "tcp("+to+")", 1)
}

// teeHandler sends every record to two handlers.
type teeHandler struct{ a, b slog.Handler }

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.a.Enabled(ctx, l) || t.b.Enabled(ctx, l)
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errA, errB error
	if t.a.Enabled(ctx, r.Level) {
		errA = t.a.Handle(ctx, r.Clone())
	}
	if t.b.Enabled(ctx, r.Level) {
		errB = t.b.Handle(ctx, r)
	}
	return errors.Join(errA, errB)
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{t.a.WithAttrs(as), t.b.WithAttrs(as)}
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{t.a.WithGroup(name), t.b.WithGroup(name)}
}
