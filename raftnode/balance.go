package raftnode

import (
	"context"
	"errors"
	"fmt"
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

// voterAddr is the Raft address of voter id in this replica's group.
func (n *Node) voterAddr(id string) (string, bool) {
	for _, s := range n.voters() {
		if string(s.ID) == id {
			return string(s.Address), true
		}
	}
	return "", false
}
