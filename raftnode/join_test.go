package raftnode

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tally-db/tally/fsm"
)

// members renders nd's configuration, sorted: "id@addr:voter|nonvoter".
func members(nd *Node) string {
	var out []string
	for _, m := range nd.Status().Members {
		kind := "nonvoter"
		if m.Voter {
			kind = "voter"
		}
		out = append(out, fmt.Sprintf("%s@%s:%s", m.ID, m.RaftAddr, kind))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func TestJoin_RefusesWithoutChangingTheConfiguration(t *testing.T) {
	c := newCluster(t, 3)
	leader := c.waitLeader(testTimeout)
	extra := c.add(false) // n3: answers on its address, not a member yet
	before := members(leader)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	cases := []struct {
		name, id, addr string
		want           error
		msg            string
	}{
		{"existing id at another address", "n1", "n3", ErrMemberElsewhere, "node n1 is already a member at n1; remove it first"},
		{"other id at a member's address", "n9", "n2", ErrAddrInUse, "raft address n2 already belongs to node n2"},
		{"address that does not answer", "n9", "nowhere", ErrJoinCheck, "node n9 does not answer on its raft address nowhere"},
		{"address answering with another id", "n9", string(c.addrs[extra]), ErrJoinCheck, `the node at raft address n3 says it is "n3", not "n9"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := leader.Join(ctx, tc.id, tc.addr)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("join %s at %s: %v, want %v naming %q", tc.id, tc.addr, err, tc.want, tc.msg)
			}
			if after := members(leader); after != before {
				t.Fatalf("configuration changed by a refused join: %s, was %s", after, before)
			}
		})
	}

}

// TestJoin_WithoutProbeRefuses: a leader that cannot ask the joining node adds nobody.
func TestJoin_WithoutProbeRefuses(t *testing.T) {
	c := newCluster(t, 1, func(cfg *Config) { cfg.Probe = nil })
	leader := c.waitLeader(testTimeout)
	i := c.add(false)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if err := leader.Join(ctx, "n1", string(c.addrs[i])); !errors.Is(err, ErrJoinCheck) || !strings.Contains(err.Error(), "cannot check joining nodes") {
		t.Fatalf("join without a probe: %v, want ErrJoinCheck", err)
	}
	if got := members(leader); got != "n0@n0:voter" {
		t.Fatalf("configuration changed: %s", got)
	}
}

// TestJoin_NonVoterUntilCaughtUp: a joined node is a non-voter while it has not applied the
// leader's log, a repeated join changes nothing, and it becomes a voter once caught up.
func TestJoin_NonVoterUntilCaughtUp(t *testing.T) {
	c := newCluster(t, 1)
	c.deploy()
	leader := c.waitLeader(testTimeout)
	for i := range 20 {
		ingest(t, leader, "p", uint64(i+1), row("k", 1))
	}
	i := c.add(false)
	c.mu.Lock()
	c.lagging = map[string]bool{"n1": true}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if err := leader.Join(ctx, "n1", string(c.addrs[i])); err != nil {
		t.Fatal(err)
	}
	if got := members(leader); got != "n0@n0:voter n1@n1:nonvoter" {
		t.Fatalf("after the join: %s, want n1 as a non-voter", got)
	}
	// The leader asks several times and keeps it a non-voter while it lags.
	from := c.probes.Load()
	eventually(t, testTimeout, func() bool {
		return c.probes.Load() >= from+3 || members(leader) != "n0@n0:voter n1@n1:nonvoter"
	}, "the leader asks n1 how far it is")
	if got := members(leader); got != "n0@n0:voter n1@n1:nonvoter" {
		t.Fatalf("a lagging node was promoted: %s", got)
	}
	// A repeated join is idempotent and keeps the promotion going.
	if err := leader.Join(ctx, "n1", string(c.addrs[i])); err != nil {
		t.Fatalf("repeated join: %v", err)
	}
	c.mu.Lock()
	c.lagging = nil
	c.mu.Unlock()
	eventually(t, testTimeout, func() bool { return members(leader) == "n0@n0:voter n1@n1:voter" }, "n1 becomes a voter")
	if got := totals(t, c.node(i), Stale, 0); got["k"].total != 20 {
		t.Fatalf("n1 was promoted before it had the data: %v", render(got))
	}
}

// TestJoin_BogusJoinsLeaveTheGroupWorking: made-up joins leave a 3-voter group at 3 voters,
// ready and taking writes.
func TestJoin_BogusJoinsLeaveTheGroupWorking(t *testing.T) {
	c := newCluster(t, 3)
	c.deploy()
	leader := c.waitLeader(testTimeout)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	for k := range 3 {
		id, addr := fmt.Sprintf("bogus%d", k), fmt.Sprintf("made-up-%d:7000", k)
		if err := leader.Join(ctx, id, addr); !errors.Is(err, ErrJoinCheck) {
			t.Fatalf("join %s at %s: %v, want ErrJoinCheck", id, addr, err)
		}
	}
	if got := members(leader); got != "n0@n0:voter n1@n1:voter n2@n2:voter" {
		t.Fatalf("members after bogus joins: %s", got)
	}
	eventually(t, testTimeout, func() bool {
		for _, n := range c.live() {
			if !n.Ready() {
				return false
			}
		}
		return true
	}, "every node ready")
	r := ingest(t, leader, "p", 1, row("x", 5))
	c.waitApplied(r.Index)
}

// TestJoin_PromotedUnderSteadyWrites: a node that joins while writes keep coming, so that it
// always trails the leader's newest commit a little, still becomes a voter.
func TestJoin_PromotedUnderSteadyWrites(t *testing.T) {
	c := newCluster(t, 1)
	c.deploy()
	leader := c.waitLeader(testTimeout)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for seq := uint64(1); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			_, err := leader.Ingest(ctx, []fsm.Part{part("w", seq, row("k", 1))})
			cancel()
			if err != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	i := c.add(false)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if err := leader.Join(ctx, "n1", string(c.addrs[i])); err != nil {
		t.Fatal(err)
	}
	eventually(t, testTimeout, func() bool { return members(leader) == "n0@n0:voter n1@n1:voter" }, "n1 becomes a voter under steady writes")
}
