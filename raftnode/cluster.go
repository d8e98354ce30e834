package raftnode

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// Errors of Join; test with errors.Is.
var (
	// ErrMemberElsewhere: a member with the joining ID exists at another Raft address.
	// Joining does not move a member: remove it first.
	ErrMemberElsewhere = errors.New("raftnode: already a member at another address")
	// ErrAddrInUse: another member has the joining node's Raft address.
	ErrAddrInUse = errors.New("raftnode: raft address belongs to another member")
	// ErrJoinCheck: the joining node did not answer on its Raft address, or answered with
	// another ID. Nothing was changed.
	ErrJoinCheck = errors.New("raftnode: the joining node failed its check")
)

// Prober asks the node at a Raft address who it is and how far it has applied group's log
// (Meta.Applied); Mux.Probe is one. It bounds its wait by ctx.
type Prober func(ctx context.Context, raftAddr string, group uint32) (Meta, error)

// Timing of joins.
const (
	// probeTimeout bounds one question to a joining node.
	probeTimeout = 2 * time.Second
	// promoteInterval is how often a leader looks for non-voters that caught up.
	promoteInterval = 250 * time.Millisecond
)

// Join adds a node to the group, safely: the node must answer on raftAddr with the same ID
// (Config.Probe), it is added as a non-voter, and the leader promotes it to voter once it
// has applied the log up to the leader's commit index (the promotion loop). So a made-up
// or unreachable address never becomes a voter that the quorum would then need.
//
// Join is idempotent: a member with the same ID and address is left alone (a non-voter
// one keeps being promoted when it catches up). A member with the same ID at another
// address gives ErrMemberElsewhere; another member at the address, ErrAddrInUse; a failed
// check, ErrJoinCheck. Only the leader can join nodes (ErrNotLeader).
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
		switch {
		case s.ID == raft.ServerID(id) && s.Address == raft.ServerAddress(raftAddr):
			if s.Suffrage != raft.Voter {
				n.promoteSoon()
			}
			return nil
		case s.ID == raft.ServerID(id):
			return fmt.Errorf("%w: node %s is already a member at %s; remove it first", ErrMemberElsewhere, id, s.Address)
		case s.Address == raft.ServerAddress(raftAddr):
			return fmt.Errorf("%w: raft address %s already belongs to node %s", ErrAddrInUse, raftAddr, s.ID)
		}
	}
	if n.cfg.Probe == nil {
		return fmt.Errorf("%w: this node cannot check joining nodes (no Config.Probe)", ErrJoinCheck)
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	m, err := n.cfg.Probe(pctx, raftAddr, n.cfg.Group)
	cancel()
	switch {
	case err != nil:
		return fmt.Errorf("%w: node %s does not answer on its raft address %s: %w", ErrJoinCheck, id, raftAddr, err)
	case m.ID != id:
		return fmt.Errorf("%w: the node at raft address %s says it is %q, not %q", ErrJoinCheck, raftAddr, m.ID, id)
	}
	if err := waitFuture(ctx, n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(raftAddr), f.Index(), n.timeout(ctx))); err != nil {
		return fmt.Errorf("raftnode: add non-voter %s at %s: %w", id, raftAddr, err)
	}
	n.logger.Info("node joined as a non-voter; it becomes a voter once it has caught up", "id", id, "raft_addr", raftAddr)
	n.promoteSoon()
	return nil
}

// promoteSoon wakes the promotion loop.
func (n *Node) promoteSoon() {
	select {
	case n.promoteNow <- struct{}{}:
	default:
	}
}

// promoteLoop runs for the node's lifetime: while this replica leads, it promotes every
// non-voter that has caught up (promoteCaughtUp).
func (n *Node) promoteLoop() {
	defer n.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(promoteInterval)
	defer t.Stop()
	targets := map[raft.ServerID]uint64{}
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		case <-n.promoteNow:
		}
		if n.IsLeader() {
			n.promoteCaughtUp(ctx, targets)
		} else {
			clear(targets)
		}
	}
}

// promoteCaughtUp makes voters of the non-voters that answer on their Raft address with
// their ID and have applied this group's log up to the commit index the leader had when it
// asked, this round or (under steady writes, which a follower always trails a little) the
// round before: targets keeps, per non-voter, the commit index of the last round. A
// non-voter that does not answer stays one (it counts for no quorum).
func (n *Node) promoteCaughtUp(ctx context.Context, targets map[raft.ServerID]uint64) {
	f := n.raft.GetConfiguration()
	if f.Error() != nil || n.cfg.Probe == nil {
		return
	}
	nonvoters := map[raft.ServerID]bool{}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage != raft.Voter {
			nonvoters[s.ID] = true
		}
	}
	maps.DeleteFunc(targets, func(id raft.ServerID, _ uint64) bool { return !nonvoters[id] })
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter || ctx.Err() != nil {
			continue
		}
		commit := n.raft.CommitIndex()
		target, asked := targets[s.ID]
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		m, err := n.cfg.Probe(pctx, string(s.Address), n.cfg.Group)
		cancel()
		switch {
		case err != nil:
			n.logger.Debug("non-voter does not answer yet", "id", s.ID, "raft_addr", s.Address, "err", err)
			continue
		case m.ID != string(s.ID):
			n.logger.Warn("non-voter answers with another ID; not promoting it", "id", s.ID, "raft_addr", s.Address, "answered", m.ID)
			continue
		case m.Applied == nil:
			continue
		case *m.Applied < commit && (!asked || *m.Applied < target):
			targets[s.ID] = commit
			continue
		}
		// prevIndex: if the configuration changed meanwhile, this fails and the next round
		// looks again.
		actx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		err = waitFuture(actx, n.raft.AddVoter(s.ID, s.Address, f.Index(), n.cfg.ApplyTimeout))
		cancel()
		if err != nil {
			n.logger.Warn("promoting a non-voter failed; retrying", "id", s.ID, "err", err)
			return
		}
		n.logger.Info("non-voter caught up; promoted to voter", "id", s.ID, "raft_addr", s.Address, "applied_index", *m.Applied)
		return // the configuration changed: read it again next round
	}
}

// LogApplied is the index of the last log entry this replica has applied, commands,
// configuration changes and no-ops alike (a joining node's answer to Probe).
func (n *Node) LogApplied() uint64 { return n.raft.AppliedIndex() }

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
	// LogStore is the replica's Raft log store: LogStoreWAL or LogStoreBolt.
	LogStore string `json:"log_store,omitempty"` // empty where this node hosts no replica
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
	st.LogStore = n.storeKind
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
