package raftnode

import (
	"context"
	"fmt"
	"strconv"

	"github.com/hashicorp/raft"
)

// Join adds a voter to the group. It is idempotent: a server already in the configuration
// with the same address is left alone. Only the leader can join nodes (ErrNotLeader).
func (n *Node) Join(ctx context.Context, id, raftAddr string) error {
	if id == "" || raftAddr == "" {
		return fmt.Errorf("raftnode: join needs an id and a raft address")
	}
	if !n.IsLeader() {
		return ErrNotLeader
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("raftnode: read configuration: %w", err)
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == raft.ServerID(id) && s.Address == raft.ServerAddress(raftAddr) && s.Suffrage == raft.Voter {
			return nil
		}
		if s.ID != raft.ServerID(id) && s.Address == raft.ServerAddress(raftAddr) {
			return fmt.Errorf("raftnode: raft address %s already belongs to node %s", raftAddr, s.ID)
		}
	}
	if err := waitFuture(ctx, n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, n.timeout(ctx))); err != nil {
		return fmt.Errorf("raftnode: add voter %s at %s: %w", id, raftAddr, err)
	}
	n.logger.Info("node joined", "id", id, "raft_addr", raftAddr)
	return nil
}

// Remove takes a server out of the group. Removing an unknown ID is not an error.
func (n *Node) Remove(ctx context.Context, id string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	if err := waitFuture(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, n.timeout(ctx))); err != nil {
		return fmt.Errorf("raftnode: remove %s: %w", id, err)
	}
	n.logger.Info("node removed", "id", id)
	return nil
}

// Member is one server of the group's configuration.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	Voter    bool   `json:"voter"`
}

// Status is a replica's view of its group.
type Status struct {
	Group        uint32   `json:"id"`
	ShardID      string   `json:"shard_id"`
	Role         string   `json:"role"`
	LeaderID     string   `json:"-"`
	LeaderRaft   string   `json:"-"`
	Term         uint64   `json:"term"`
	CommitIndex  uint64   `json:"commit_index"`
	AppliedIndex uint64   `json:"applied_index"`
	LastIndex    uint64   `json:"last_index"`
	Members      []Member `json:"members"`
	// LastContact is how long ago a follower heard from the leader ("0" on a leader).
	LastContact string `json:"last_contact"`
}

// Status reports the replica's role, term, indexes and members.
func (n *Node) Status() Status {
	st := Status{Group: n.cfg.Group, Role: stateName(n.raft.State()), Term: n.raft.CurrentTerm(),
		CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.fsm.AppliedIndex(), LastIndex: n.raft.LastIndex()}
	addr, id := n.raft.LeaderWithID()
	st.LeaderID, st.LeaderRaft = string(id), string(addr)
	st.ShardID, _ = n.fsm.ShardID()
	stats := n.raft.Stats()
	st.LastContact = stats["last_contact"]
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			st.Members = append(st.Members, Member{ID: string(s.ID), RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter})
		}
	}
	return st
}

// Ready reports whether the replica knows a leader and has applied everything it knows to
// be committed.
func (n *Node) Ready() bool {
	addr, _ := n.raft.LeaderWithID()
	return addr != "" && n.raft.AppliedIndex() >= n.raft.CommitIndex()
}

func stateName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	case raft.Shutdown:
		return "shutdown"
	}
	return "unknown(" + strconv.Itoa(int(s)) + ")"
}

// Snapshot takes a snapshot now (tests and operators).
func (n *Node) Snapshot() error {
	return n.raft.Snapshot().Error()
}

// StateHash is the applied index and the hash of the FSM state at that index.
func (n *Node) StateHash() (uint64, string, error) { return n.fsm.HashedState() }
