package raftnode

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
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
	for _, n := range mine {
		var target string
		for _, id := range ids {
			if _, ok := n.voterAddr(id); id == self || !ok {
				continue
			}
			if target == "" || leads[id] < leads[target] {
				target = id
			}
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

// voterAddr is the Raft address of voter id in this replica's group.
func (n *Node) voterAddr(id string) (string, bool) {
	for _, s := range n.voters() {
		if string(s.ID) == id {
			return string(s.Address), true
		}
	}
	return "", false
}
