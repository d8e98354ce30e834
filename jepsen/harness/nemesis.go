package harness

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/tally-db/tally/jepsen/check"
)

// Nemeses are the faults a run can inject, by name.
var Nemeses = []string{
	"kill-random",    // SIGKILL a random node, restart it later
	"kill-leader",    // SIGKILL a group's leader, restart it later
	"kill-all",       // SIGKILL every node at once, restart them all
	"pause-leader",   // SIGSTOP a group's leader longer than the election timeout (the zombie leader), then SIGCONT
	"isolate-leader", // cut a group's leader from the other nodes (Raft and forwarding), then heal
	"partition",      // a random majority/minority split, then heal
	"one-way",        // a group's leader can still send to the others but hears nothing from them
	"flaky",          // every node-to-node link delays and resets now and then
	"store-cut",      // every node's link to the shared store blackholed for a while
	"store-cut-kill", // the store links cut, and a node SIGKILLed and restarted before they heal
	"clock",          // skew a group leader's clock forward or back, or jump it, then set it right
	"transfer",       // leadership transfer of a random group in the middle of load
	// Membership (ScaleNemeses): five node slots, groups of three replicas.
	"add-node",         // start a node that joins while the workload runs; wait for the map to settle
	"drain-node",       // drain a node (202), wait until it left the map, then stop it
	"kill-during-move", // start a move (add or drain), SIGKILL a node taking part in it mid-move, restart it
}

// Mixed is the nemesis name that picks one of Nemeses at random for each fault.
const Mixed = "mixed"

// ValidNemesis reports whether name is a nemesis or Mixed.
func ValidNemesis(name string) bool {
	if name == Mixed {
		return true
	}
	for _, n := range Nemeses {
		if n == name {
			return true
		}
	}
	return false
}

// nemesis injects faults of its kinds on a seeded schedule and heals them.
type nemesis struct {
	c      *cluster
	rec    *recorder
	rng    *rand.Rand
	kinds  []string
	groups int
	zones  bool // nodes carry --zone (drain-node spares a zone's only node)
	// failed lists the restarts that did not come up: a node that cannot start again is
	// an availability failure the run reports, whatever the checkers say.
	failed []string
}

// restart starts n again and records a failure.
func (nm *nemesis) restart(ctx context.Context, n *node, lg *slog.Logger) error {
	err := nm.c.startNode(ctx, n)
	if err != nil {
		lg.Error("restart failed", "node", n.id, "err", err)
		nm.failed = append(nm.failed, fmt.Sprintf("%s at %s: %v", n.id, nm.rec.now().Round(time.Millisecond), err))
	}
	return err
}

// run injects faults from now until ctx ends: after a quiet warmup, faults of hold seconds
// separated by rest periods. Every fault is healed before run returns.
func (nm *nemesis) run(ctx context.Context) {
	sleep(ctx, 2*time.Second)
	for ctx.Err() == nil {
		kind := nm.kinds[nm.rng.IntN(len(nm.kinds))]
		if kind == Mixed {
			kind = Nemeses[nm.rng.IntN(len(Nemeses))]
		}
		hold := time.Duration(1500+nm.rng.IntN(2500)) * time.Millisecond
		g := nm.rng.IntN(nm.groups)
		nm.inject(ctx, kind, g, hold)
		sleep(ctx, time.Duration(1000+nm.rng.IntN(1500))*time.Millisecond)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// inject applies one fault, holds it (the hold is not cut short by ctx: a fault is always
// healed as planned), heals it and records it.
func (nm *nemesis) inject(ctx context.Context, kind string, g int, hold time.Duration) {
	c := nm.c
	f := check.Fault{Kind: kind, Group: -1, Start: nm.rec.now()}
	lg := c.logger.With("nemesis", kind)
	bg := context.WithoutCancel(ctx)
	ms := c.members()
	leader := func() *node {
		l := c.leader(bg, g)
		if l != nil {
			f.Group, f.Leader, f.Nodes = g, true, []string{l.id}
		}
		return l
	}
	switch kind {
	case "add-node", "drain-node", "kill-during-move":
		if !nm.injectScale(bg, kind, &f, hold, lg) {
			lg.Info("nothing to act on; fault skipped")
			return
		}
	case "kill-random", "kill-leader":
		var n *node
		if kind == "kill-leader" {
			n = leader()
		} else {
			n = ms[nm.rng.IntN(len(ms))]
			f.Nodes = []string{n.id}
			if l := c.leader(bg, g); l == n {
				f.Group, f.Leader = g, true
			}
		}
		if n == nil {
			return
		}
		f.Start = nm.rec.now()
		c.kill(n)
		f.Detail = "SIGKILL " + n.id
		time.Sleep(hold)
		if err := nm.restart(bg, n, lg); err != nil {
			f.Detail += "; restart failed: " + err.Error()
		}
	case "kill-all":
		f.Nodes, f.Detail = ids(ms), "SIGKILL every node"
		for gi := range nm.groups {
			if c.leader(bg, gi) != nil {
				f.Group, f.Leader = gi, true
				break
			}
		}
		if nm.groups > 1 {
			f.Group = -1
		}
		f.Start = nm.rec.now()
		for _, n := range ms {
			c.kill(n)
		}
		time.Sleep(hold)
		for _, n := range ms {
			if err := nm.restart(bg, n, lg); err != nil {
				f.Detail += "; restart of " + n.id + " failed: " + err.Error()
			}
		}
	case "pause-leader":
		n := leader()
		if n == nil {
			return
		}
		f.Start = nm.rec.now()
		c.pause(n)
		f.Detail = "SIGSTOP " + n.id
		time.Sleep(hold + time.Second) // longer than the election timeout
		c.resume(n)
	case "isolate-leader":
		n := leader()
		if n == nil {
			return
		}
		f.Start = nm.rec.now()
		c.net.Isolate(n.id, "raft", "http")
		f.Detail = n.id + " cut from " + strings.Join(others(c, n), " ")
		time.Sleep(hold)
		c.net.Heal()
	case "one-way":
		n := leader()
		if n == nil {
			return
		}
		f.Start = nm.rec.now()
		for _, o := range ms {
			if o != n {
				c.net.CutOneWay(o.id, n.id)
			}
		}
		f.Detail = n.id + " hears nothing from " + strings.Join(others(c, n), " ")
		time.Sleep(hold)
		c.net.Heal()
	case "partition":
		perm := nm.rng.Perm(len(ms))
		minority := []string{ms[perm[0]].id}
		var majority []string
		for _, i := range perm[1:] {
			majority = append(majority, ms[i].id)
		}
		sort.Strings(majority)
		f.Nodes = append(minority, majority...)
		f.Detail = minority[0] + " | " + strings.Join(majority, " ")
		for gi := range nm.groups {
			if l := c.leader(bg, gi); l != nil && l.id == minority[0] {
				f.Group, f.Leader = gi, true
			}
		}
		f.Start = nm.rec.now()
		c.net.Partition(minority, majority)
		time.Sleep(hold)
		c.net.Heal()
	case "flaky":
		f.Nodes = ids(ms)
		f.Detail = "node-to-node links: 1% of chunks reset, 1-11ms delay"
		c.net.Flaky(0.01, time.Millisecond, 10*time.Millisecond, "raft", "http")
		time.Sleep(hold)
		c.net.Heal()
	case "store-cut":
		f.Nodes = ids(ms)
		f.Detail = "every store link blackholed"
		c.net.CutKind("store")
		time.Sleep(hold + 2*time.Second)
		c.net.Heal()
	case "store-cut-kill":
		n := ms[nm.rng.IntN(len(ms))]
		f.Nodes = []string{n.id}
		if l := c.leader(bg, g); l == n {
			f.Group, f.Leader = g, true
		}
		f.Detail = "every store link blackholed; SIGKILL " + n.id + " and restart it during the cut"
		f.Start = nm.rec.now()
		c.net.CutKind("store")
		time.Sleep(hold / 2)
		c.kill(n)
		time.Sleep(hold / 2)
		if err := nm.restart(bg, n, lg); err != nil {
			f.Detail += "; restart failed: " + err.Error()
		}
		time.Sleep(time.Second)
		c.net.Heal()
	case "clock":
		n := leader()
		if n == nil {
			n = ms[nm.rng.IntN(len(ms))]
			f.Nodes = []string{n.id}
		}
		f.Leader = false // a clock fault does not take the leader away
		offsets := []int64{-5000, -60_000, 5000, 30_000, 3_600_000}
		off := offsets[nm.rng.IntN(len(offsets))]
		f.Detail = fmt.Sprintf("%s clock %+dms", n.id, off)
		if err := nm.setClock(bg, n, off); err != nil {
			f.Detail += " failed: " + err.Error()
		}
		time.Sleep(hold)
		if err := nm.setClock(bg, n, 0); err != nil {
			f.Detail += "; reset failed: " + err.Error()
		}
	case "transfer":
		n := leader()
		if n == nil {
			return
		}
		tctx, cancel := context.WithTimeout(bg, 5*time.Second)
		out, err := n.api.Transfer(tctx, g, "")
		cancel()
		if err == nil {
			f.Detail = fmt.Sprintf("group %d: %s -> %s", g, n.id, out.Leader)
		} else {
			f.Detail = fmt.Sprintf("group %d: transfer from %s failed: %v", g, n.id, err)
		}
	}
	f.End = nm.rec.now()
	lg.Info("fault healed", "detail", f.Detail, "start", f.Start.Round(time.Millisecond), "end", f.End.Round(time.Millisecond))
	nm.rec.fault(f)
}

func (nm *nemesis) setClock(ctx context.Context, n *node, offsetMS int64) error {
	return nm.c.postJSON(ctx, n, "/v1/debug/clock", map[string]int64{"offset_ms": offsetMS}, nil)
}

func others(c *cluster, n *node) []string {
	var out []string
	for _, o := range c.members() {
		if o != n {
			out = append(out, o.id)
		}
	}
	return out
}

// healAll undoes anything still broken: paused or dead nodes, cut links, skewed clocks.
func (nm *nemesis) healAll(ctx context.Context) error {
	c := nm.c
	c.net.Heal()
	for _, n := range c.members() {
		c.resume(n)
		if !n.running() {
			if err := c.startNode(ctx, n); err != nil {
				return err
			}
		}
		if err := nm.setClock(ctx, n, 0); err != nil {
			return fmt.Errorf("reset the clock of %s: %w", n.id, err)
		}
	}
	return nil
}
