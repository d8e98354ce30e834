package raftnode

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestNode_Transfer(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	old := c.waitLeader(testTimeout)
	for _, f := range c.others(old) {
		if _, err := f.Transfer(ctx, ""); !errors.Is(err, ErrNotLeader) {
			t.Errorf("Transfer on follower %s: %v, want ErrNotLeader", f.ID(), err)
		}
	}
	if _, err := old.Transfer(ctx, "nope"); !errors.Is(err, ErrNotVoter) || !strings.Contains(err.Error(), `"nope" is not a voter of group 0 (voters: n0, n1, n2)`) {
		t.Errorf("Transfer to an unknown node: %v", err)
	}
	if id, err := old.Transfer(ctx, old.ID()); err != nil || id != old.ID() || !old.IsLeader() {
		t.Errorf("Transfer to the leader itself: %q, %v (still leader %v)", id, err, old.IsLeader())
	}

	// Raft's pick.
	id, err := old.Transfer(ctx, "")
	if err != nil || id == "" || id == old.ID() {
		t.Fatalf("Transfer: new leader %q, %v (old %s)", id, err, old.ID())
	}
	next := c.waitLeader(testTimeout)
	// A named voter.
	target := c.others(next)[0].ID()
	if target == old.ID() {
		target = c.others(next)[1].ID()
	}
	if id, err := next.Transfer(ctx, target); err != nil || id != target {
		t.Fatalf("Transfer to %s: new leader %q, %v", target, id, err)
	}
	eventually(t, testTimeout, func() bool {
		l, _, err := c.node(c.indexOf(next)).Leader()
		return err == nil && l == target
	}, "leader is not %s", target)
}

func TestNode_TransferAlone(t *testing.T) {
	n := newCluster(t, 1).waitLeader(testTimeout)
	if _, err := n.Transfer(t.Context(), ""); !errors.Is(err, ErrNoOtherVoter) {
		t.Errorf("Transfer with one voter: %v, want ErrNoOtherVoter", err)
	}
}
