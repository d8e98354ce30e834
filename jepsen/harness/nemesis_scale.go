package harness

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/tally-db/tally/jepsen/check"
)

// ScaleNemeses change the cluster's membership: their runs (and mixed runs, which may pick
// them) have five node slots, of which three to five are members at a time.
var ScaleNemeses = []string{"add-node", "drain-node", "kill-during-move"}

// scaleRun reports whether a run with this nemesis needs the five-slot cluster.
func scaleRun(nemesis string) bool {
	return nemesis == Mixed || slices.Contains(ScaleNemeses, nemesis)
}

// settleTimeout bounds the wait for the map to settle after a membership change.
const settleTimeout = 90 * time.Second

// injectScale applies one membership fault and waits until the map settled again. It
// reports false when the fault had nothing to act on (no free slot to add, no node that may
// be drained); nothing is then recorded.
func (nm *nemesis) injectScale(ctx context.Context, kind string, f *check.Fault, hold time.Duration, lg *slog.Logger) bool {
	c := nm.c
	switch kind {
	case "add-node":
		free := c.free()
		if len(free) == 0 {
			return false
		}
		n := free[nm.rng.IntN(len(free))]
		f.Nodes, f.Start, f.Detail = []string{n.id}, nm.rec.now(), "add "+n.id
		if err := c.addNode(ctx, n); err != nil {
			nm.fail(f, lg, "start "+n.id, err)
			return true
		}
		nm.settle(ctx, f, lg, n.id+" in the map", func(m *clusterMap) bool { return m.has(n.id) })
	case "drain-node":
		n := nm.drainTarget(ctx)
		if n == nil {
			return false
		}
		f.Nodes, f.Start, f.Detail = []string{n.id}, nm.rec.now(), "drain "+n.id
		if err := c.drain(ctx, n); err != nil {
			nm.fail(f, lg, "drain "+n.id, err)
			return true
		}
		if nm.settle(ctx, f, lg, n.id+" out of the map", func(m *clusterMap) bool { return !m.has(n.id) }) {
			c.retire(n)
		}
	case "kill-during-move":
		return nm.killDuringMove(ctx, f, hold, lg)
	}
	return true
}

// drainTarget picks a node that may be drained: not one of the last members or its zone's
// only node. The controller's leader may be drained too: it hands the controller over.
func (nm *nemesis) drainTarget(ctx context.Context) *node {
	cands := nm.c.drainable(nm.zones)
	if len(cands) == 0 {
		return nil
	}
	return cands[nm.rng.IntN(len(cands))]
}

// killDuringMove starts a move (adds a node, or drains one), SIGKILLs a node taking part
// in it (the new replica's node, the leaving one's, or the controller's leader) while the
// map shows it in progress, restarts it after hold and waits for the move to be resumed or
// rolled back and the map to settle.
func (nm *nemesis) killDuringMove(ctx context.Context, f *check.Fault, hold time.Duration, lg *slog.Logger) bool {
	c := nm.c
	free := c.free()
	target, add := (*node)(nil), false
	if len(free) > 0 && (len(c.members()) <= c.replicas || nm.rng.IntN(2) == 0) {
		target, add = free[nm.rng.IntN(len(free))], true
	} else if target = nm.drainTarget(ctx); target == nil {
		return false
	}
	f.Start = nm.rec.now()
	if add {
		f.Detail = "add " + target.id
		if err := c.addNode(ctx, target); err != nil {
			nm.fail(f, lg, "start "+target.id, err)
			return true
		}
	} else {
		f.Detail = "drain " + target.id
		if err := c.drain(ctx, target); err != nil {
			nm.fail(f, lg, "drain "+target.id, err)
			return true
		}
	}
	// The move: one that adds or removes the target, as soon as the map shows it.
	var mv *clusterMap
	var from, to string
	_ = c.eventually(ctx, 20*time.Second, "a move of "+target.id, func() bool {
		m, _, err := c.readMap(ctx)
		if err != nil {
			return false
		}
		a, r, ok := m.moving(target.id)
		if ok {
			mv, to, from = m, a, r
		}
		return ok
	})
	victims := []string{target.id}
	if mv != nil {
		f.Detail += fmt.Sprintf(" (move +%s -%s)", to, from)
		for _, id := range []string{to, from} {
			if id != "" && !slices.Contains(victims, id) {
				victims = append(victims, id)
			}
		}
		if mv.Controller != nil && !slices.Contains(victims, mv.Controller.ID) {
			victims = append(victims, mv.Controller.ID)
		}
	} else {
		f.Detail += " (no move seen)"
	}
	var victim *node
	id := victims[nm.rng.IntN(len(victims))]
	for _, n := range c.members() {
		if n.id == id && n.running() {
			victim = n
		}
	}
	if victim != nil {
		f.Nodes = []string{victim.id}
		c.kill(victim)
		f.Detail += "; SIGKILL " + victim.id
		if mv != nil && mv.Controller != nil && mv.Controller.ID == victim.id {
			f.Detail += " (the controller's leader)"
		}
		time.Sleep(hold)
		if err := nm.restart(ctx, victim, lg); err != nil {
			f.Detail += "; restart failed: " + err.Error()
		}
	}
	if !slices.Contains(f.Nodes, target.id) {
		f.Nodes = append(f.Nodes, target.id)
	}
	if add {
		nm.settle(ctx, f, lg, target.id+" in the map", func(m *clusterMap) bool { return m.has(target.id) })
	} else if nm.settle(ctx, f, lg, target.id+" out of the map", func(m *clusterMap) bool { return !m.has(target.id) }) {
		c.retire(target)
	}
	return true
}

// settle waits for the map to settle with cond; a map that does not is a failure of the run.
func (nm *nemesis) settle(ctx context.Context, f *check.Fault, lg *slog.Logger, what string, cond func(*clusterMap) bool) bool {
	begin := time.Now()
	if err := nm.c.waitSettled(ctx, settleTimeout, what, cond); err != nil {
		nm.fail(f, lg, "settle", err)
		return false
	}
	f.Detail += fmt.Sprintf("; settled in %s", time.Since(begin).Round(100*time.Millisecond))
	return true
}

// fail records that a membership fault could not be carried through: the run fails.
func (nm *nemesis) fail(f *check.Fault, lg *slog.Logger, what string, err error) {
	lg.Error("membership change failed", "what", what, "err", err)
	f.Detail += fmt.Sprintf("; %s failed: %v", what, err)
	nm.failed = append(nm.failed, fmt.Sprintf("%s at %s: %v", what, nm.rec.now().Round(time.Millisecond), err))
}
