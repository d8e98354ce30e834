package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// TransferLeadership hands this replica's leadership to the voter id at raftAddr.
func (n *Node) TransferLeadership(ctx context.Context, id, raftAddr string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	return waitFuture(ctx, n.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(raftAddr)))
}

// Errors of Transfer; test with errors.Is.
var (
	// ErrNotVoter: the server named to take over is not a voter of the group.
	ErrNotVoter = errors.New("raftnode: not a voter of the group")
	// ErrNoOtherVoter: the group has no voter but the leader to hand leadership to.
	ErrNoOtherVoter = errors.New("raftnode: the group has no other voter to hand leadership to")
	// ErrTransferInProgress: a leadership transfer of the group is already under way.
	ErrTransferInProgress = errors.New("raftnode: a leadership transfer is already in progress")
	// ErrTransferFailed: the transfer did not complete (the target did not win in time, or
	// no new leader was known before ctx ended); this replica may still lead. Retry.
	ErrTransferFailed = errors.New("raftnode: leadership transfer failed")
)

// transferPoll is how often Transfer looks for the new leader after handing over.
const transferPoll = 10 * time.Millisecond

// Transfer hands this replica's leadership to the voter to, or to the most up-to-date other
// voter when to is empty, and waits until this replica knows a new leader, whose ID it
// returns. Naming the current leader (this node) changes nothing and returns its ID. Errors:
// ErrNotLeader (nothing was done), ErrNotVoter, ErrNoOtherVoter, ErrTransferInProgress,
// ErrTransferFailed (also when ctx ends first), ErrClosed. Bound ctx: it is the only limit
// on the wait for a new leader.
func (n *Node) Transfer(ctx context.Context, to string) (string, error) {
	if n.closed.Load() {
		return "", ErrClosed
	}
	if !n.IsLeader() {
		return "", ErrNotLeader
	}
	self := n.cfg.ID
	if to == self {
		return self, nil
	}
	voters := n.voters()
	var f raft.Future
	if to != "" {
		addr, ok := n.voterAddr(to)
		if !ok {
			ids := make([]string, len(voters))
			for i, v := range voters {
				ids[i] = string(v.ID)
			}
			slices.Sort(ids)
			return "", fmt.Errorf("%w: %q is not a voter of group %d (voters: %s)", ErrNotVoter, to, n.cfg.Group, strings.Join(ids, ", "))
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(to), raft.ServerAddress(addr))
	} else {
		if len(voters) < 2 {
			return "", fmt.Errorf("%w: group %d has %d voter(s)", ErrNoOtherVoter, n.cfg.Group, len(voters))
		}
		f = n.raft.LeadershipTransfer()
	}
	if err := waitTransfer(ctx, f); err != nil {
		return "", err
	}
	t := time.NewTicker(transferPoll)
	defer t.Stop()
	for {
		if id, _, err := n.Leader(); err == nil && id != self {
			n.logger.Info("leadership handed over on request", "to", id, "asked_for", to)
			return id, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w: leadership of group %d was handed over but no new leader is known yet: %w", ErrTransferFailed, n.cfg.Group, ctx.Err())
		case <-n.stop:
			return "", ErrClosed
		case <-t.C:
		}
	}
}

// waitTransfer waits for a leadership transfer future or ctx, mapping raft's errors.
func waitTransfer(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrTransferFailed, ctx.Err())
	case err := <-done:
		switch {
		case err == nil:
			return nil
		case errors.Is(err, raft.ErrLeadershipTransferInProgress):
			return ErrTransferInProgress
		case errors.Is(err, raft.ErrNotLeader):
			return ErrNotLeader
		case errors.Is(err, raft.ErrRaftShutdown):
			return ErrClosed
		}
		return fmt.Errorf("%w: %w", ErrTransferFailed, err)
	}
}

// BalanceInterval is how often Balance looks at the spread of leaders.
const BalanceInterval = 2 * time.Second

// Balance spreads the leadership of the replicas' groups over the voters until ctx ends:
// every BalanceInterval, when this node leads more than its share (the number of groups
// divided by the number of voters, rounded up), it hands one of its groups to the voter that
// leads the fewest (ties to the smallest ID). Every node runs it; each only gives leaderships
// away, and only to a node below its share, so the spread settles without coordination.
func Balance(ctx context.Context, replicas []*Node, logger *slog.Logger) {
	if len(replicas) < 2 {
		return
	}
	t := time.NewTicker(BalanceInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := balanceOnce(ctx, replicas); err != nil {
			logger.Debug("leader balancing", "err", err)
		}
	}
}

// balanceOnce makes at most one transfer.
func balanceOnce(ctx context.Context, replicas []*Node) error {
	self := replicas[0].cfg.ID
	leads := map[string]int{}
	addrs := map[string]string{}
	var mine []*Node
	for _, n := range replicas {
		st := n.Status()
		if st.LeaderID == "" {
			return nil // an election is under way: wait
		}
		for _, m := range st.Members {
			if m.Voter {
				addrs[m.ID] = m.RaftAddr
				leads[m.ID] += 0
			}
		}
		leads[st.LeaderID]++
		if st.LeaderID == self {
			mine = append(mine, n)
		}
	}
	share := (len(replicas) + len(addrs) - 1) / max(len(addrs), 1)
	if len(mine) <= share {
		return nil
	}
	ids := make([]string, 0, len(leads))
	for id := range leads {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	down := map[string]bool{} // voters that did not answer a probe this round
	for _, n := range mine {
		var target string
		for {
			target = ""
			for _, id := range ids {
				if _, ok := n.voterAddr(id); id == self || !ok || down[id] {
					continue
				}
				if target == "" || leads[id] < leads[target] {
					target = id
				}
			}
			if target == "" || n.answers(ctx, target) {
				break
			}
			// A dead voter leads nothing, so it looks like the best target; a transfer to
			// it would only hold the group's writes for an election timeout every round.
			down[target] = true
		}
		if target == "" || leads[target]+1 > share {
			continue
		}
		// The address this group knows the target by: groups need not share addresses.
		addr, _ := n.voterAddr(target)
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := n.TransferLeadership(tctx, target, addr)
		cancel()
		if err != nil {
			return fmt.Errorf("transfer group %d to %s: %w", n.cfg.Group, target, err)
		}
		n.logger.Info("leadership handed over to balance the cluster", "to", target, "leading", len(mine)-1, "share", share)
		return nil
	}
	return nil
}

// balanceProbeTimeout bounds the probe of a leadership transfer's target.
const balanceProbeTimeout = 500 * time.Millisecond

// answers reports whether voter id answers on its Raft address as itself (Raft's transfer
// then brings it up to date before it takes over). Without a Probe every voter counts as
// answering.
func (n *Node) answers(ctx context.Context, id string) bool {
	if n.cfg.Probe == nil {
		return true
	}
	addr, ok := n.voterAddr(id)
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, balanceProbeTimeout)
	defer cancel()
	m, err := n.cfg.Probe(ctx, addr, n.cfg.Group)
	return err == nil && m.ID == id
}

// voterAddr is the Raft address of voter id in this replica's group.
func (n *Node) voterAddr(id string) (string, bool) {
	for _, s := range n.voters() {
		if string(s.ID) == id {
			return string(s.Address), true
		}
	}
	return "", false
}
