package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/httpapi"
	"github.com/tally-db/tally/raftnode"
)

// ErrNotHosted: this node holds no replica of the group (the request is routed to its
// leader instead), or none at all for a request that needs one.
var ErrNotHosted = errors.New("node: no replica of the group on this node")

// slot is one partition group as the API sees it on this node: the local replica when the
// node hosts one, else a stand-in that knows the group's leader (so the API forwards to it)
// and reads what every group shares (the apps' schemas) from the catalog of the cluster
// map's apps (catalog.go).
type slot struct {
	g   uint32
	n   *Node
	rep atomic.Pointer[raftnode.Node]

	mu       sync.Mutex
	leaderID string
	leaderRA string
	seen     time.Time
}

var _ httpapi.Group = (*slot)(nil)

// Replica is the local replica, if any (httpapi reaches the outbox, sinks and metrics
// through it).
func (s *slot) Replica() (httpapi.Group, bool) {
	if r := s.rep.Load(); r != nil {
		return r, true
	}
	return nil, false
}

func (s *slot) local() *raftnode.Node { return s.rep.Load() }

// shared runs fn on what every group shares, for a group this node hosts no replica of:
// the catalog of the map's apps; for a map that does not hold every app yet (created before
// it kept them), a local replica of any group.
func (s *slot) shared(ctx context.Context, fn func(fsm.View)) error {
	if c := s.n.catalog(); c != nil && c.complete {
		fn(fsm.ViewOf(c.eng))
		return nil
	}
	for _, o := range s.n.slots {
		if r := o.local(); r != nil {
			return r.Read(ctx, raftnode.Stale, 0, fn)
		}
	}
	return fmt.Errorf("%w: this node knows no apps yet (group %d)", raftnode.ErrNoLeader, s.g)
}

func (s *slot) Ingest(ctx context.Context, parts []fsm.Part) (*raftnode.IngestResult, error) {
	if r := s.local(); r != nil {
		return r.Ingest(ctx, parts)
	}
	return nil, raftnode.ErrNotLeader
}

func (s *slot) Deploy(ctx context.Context, text string) (string, uint64, error) {
	if r := s.local(); r != nil {
		return r.Deploy(ctx, text)
	}
	return "", 0, raftnode.ErrNotLeader
}

func (s *slot) Undeploy(ctx context.Context, name string) (uint64, error) {
	if r := s.local(); r != nil {
		return r.Undeploy(ctx, name)
	}
	return 0, raftnode.ErrNotLeader
}

func (s *slot) Read(ctx context.Context, c raftnode.Consistency, minIndex uint64, fn func(fsm.View)) error {
	if r := s.local(); r != nil {
		return r.Read(ctx, c, minIndex, fn)
	}
	if c != raftnode.Stale || minIndex > 0 {
		return raftnode.ErrNotLeader
	}
	return s.shared(ctx, fn)
}

func (s *slot) MemoryRows(ctx context.Context, c raftnode.Consistency, minIndex uint64, app, query string) (*agg.Plan, []agg.ShardRow, error) {
	if r := s.local(); r != nil {
		return r.MemoryRows(ctx, c, minIndex, app, query)
	}
	if c != raftnode.Stored {
		return nil, nil, raftnode.ErrNotLeader
	}
	// Stored reads no memory: only the plan, which the app's definition makes.
	var plan *agg.Plan
	var qerr error
	if err := s.shared(ctx, func(e fsm.View) { plan, qerr = e.Plan(app, query) }); err != nil {
		return nil, nil, err
	}
	return plan, nil, qerr
}

func (s *slot) Join(ctx context.Context, id, raftAddr string) error {
	if r := s.local(); r != nil {
		return r.Join(ctx, id, raftAddr)
	}
	return raftnode.ErrNotLeader
}

func (s *slot) Remove(ctx context.Context, id string) error {
	if r := s.local(); r != nil {
		return r.Remove(ctx, id)
	}
	return raftnode.ErrNotLeader
}

func (s *slot) Transfer(ctx context.Context, to string) (string, error) {
	if r := s.local(); r != nil {
		return r.Transfer(ctx, to)
	}
	return "", raftnode.ErrNotLeader
}

func (s *slot) IsLeader() bool {
	r := s.local()
	return r != nil && r.IsLeader()
}

func (s *slot) Ready() bool {
	if r := s.local(); r != nil {
		return r.Ready()
	}
	id, _ := s.leader()
	return id != ""
}

func (s *slot) StateHash() (uint64, string, error) {
	if r := s.local(); r != nil {
		return r.StateHash()
	}
	return 0, "", fmt.Errorf("%w (group %d)", ErrNotHosted, s.g)
}

// Status is the local replica's, or the map's view with the leader this node learned.
func (s *slot) Status() raftnode.Status {
	if r := s.local(); r != nil {
		st := r.Status()
		if st.LeaderRaft == "" {
			// A replica that is not in its group's configuration yet (a move adds it)
			// knows no leader: the voters the map names do.
			st.LeaderID, st.LeaderRaft = s.leader()
		}
		return st
	}
	m, _ := s.n.ctl.Map()
	st := raftnode.Status{Group: s.g, Role: "none"}
	st.LeaderID, st.LeaderRaft = s.leader()
	for _, g := range m.Groups {
		if g.ID != s.g {
			continue
		}
		st.ShardID = g.Shard
		for _, v := range g.Voters {
			st.Members = append(st.Members, s.n.member(m, v, "voter"))
		}
		if g.Move != nil && g.Move.Add != "" && !slices.Contains(g.Voters, g.Move.Add) {
			st.Members = append(st.Members, s.n.member(m, g.Move.Add, "nonvoter"))
		}
	}
	return st
}

// leader is the group's leader this node last learned (for a group it hosts no replica of).
func (s *slot) leader() (id, raftAddr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leaderID, s.leaderRA
}

func (s *slot) setLeader(id, raftAddr string) {
	s.mu.Lock()
	s.leaderID, s.leaderRA, s.seen = id, raftAddr, time.Now()
	s.mu.Unlock()
}

// FindLeader asks the group's voters who leads it now (httpapi, when Status knows no leader).
func (s *slot) FindLeader(ctx context.Context) (id, raftAddr string) {
	m, _ := s.n.ctl.Map()
	if int(s.g) >= len(m.Groups) {
		return "", ""
	}
	return s.n.findLeader(ctx, m, m.Groups[s.g], 0)
}

// Leader answers the meta channel: the leader this node knows for the group.
func (s *slot) Leader() (id, raftAddr string) {
	if r := s.local(); r != nil {
		if id, addr, err := r.Leader(); err == nil {
			return id, addr
		}
	}
	return s.leader()
}
