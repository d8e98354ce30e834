package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/tally-db/tally/clustermap"
	"github.com/tally-db/tally/raftnode"
)

// ControllerGroup is the Raft group ID of the controller: the group whose state is the
// cluster map. Partition groups are numbered from 0.
const ControllerGroup uint32 = math.MaxUint32

// controller is this node's replica of the controller group.
type controller struct {
	id     string
	raft   *raft.Raft
	fsm    *clustermap.FSM
	bolt   *raftboltdb.BoltStore
	trans  raft.Transport
	logger *slog.Logger
}

// openController opens (and with bootstrap, on first start, creates) the controller replica
// in dir.
func openController(id, dir string, bootstrap bool, trans raft.Transport, logger *slog.Logger) (*controller, error) {
	logger = logger.With("component", "controller")
	if err := raftnode.SecureDir(dir, logger); err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	path := filepath.Join(dir, "raft.db")
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: path})
	if err != nil {
		return nil, fmt.Errorf("controller: open raft log %s: %w", path, err)
	}
	hlog := hclog.FromStandardLogger(slog.NewLogLogger(logger.Handler(), slog.LevelInfo), &hclog.LoggerOptions{Name: "raft", Level: hclog.Info})
	snaps, err := raftnode.NewPrivateSnapshots(dir, 2, hlog, logger)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("controller: snapshot store in %s: %w", dir, err)
	}
	rc := raft.DefaultConfig()
	// Only Close shuts Raft down (see raftnode.Open): a second Shutdown returns at once,
	// without waiting for Raft's goroutines, and Close would then close the log store
	// under them.
	rc.ShutdownOnRemove = false
	rc.LocalID = raft.ServerID(id)
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 400*time.Millisecond, 400*time.Millisecond, 300*time.Millisecond
	rc.CommitTimeout = 20 * time.Millisecond
	rc.SnapshotThreshold, rc.TrailingLogs = 1024, 1024
	rc.Logger = hlog
	if bootstrap {
		existing, err := raft.HasExistingState(bolt, bolt, snaps)
		if err != nil {
			bolt.Close()
			return nil, fmt.Errorf("controller: inspect existing state: %w", err)
		}
		if !existing {
			boot := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}}
			if err := raft.BootstrapCluster(rc, bolt, bolt, snaps, trans, boot); err != nil {
				bolt.Close()
				return nil, fmt.Errorf("controller: bootstrap: %w", err)
			}
		}
	}
	f := clustermap.NewFSM()
	r, err := raft.NewRaft(rc, f, bolt, bolt, snaps, trans)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("controller: start raft: %w", err)
	}
	return &controller{id: id, raft: r, fsm: f, bolt: bolt, trans: trans, logger: logger}, nil
}

// IsLeader reports whether this replica leads the controller group.
func (c *controller) IsLeader() bool { return c.raft.State() == raft.Leader }

// Leader is the controller leader's ID and Raft address ("" when unknown).
func (c *controller) Leader() (id, raftAddr string) {
	addr, sid := c.raft.LeaderWithID()
	return string(sid), string(addr)
}

// Map returns this replica's copy of the map and a channel closed when it changes.
func (c *controller) Map() (clustermap.Map, <-chan struct{}) { return c.fsm.Map() }

// Propose commits cmd to the map (on the leader) and returns the map's verdict.
func (c *controller) Propose(ctx context.Context, cmd clustermap.Command) error {
	_, err := c.ProposeIndex(ctx, cmd)
	return err
}

// ProposeIndex is Propose that also returns the entry's Raft index.
func (c *controller) ProposeIndex(ctx context.Context, cmd clustermap.Command) (uint64, error) {
	if !c.IsLeader() {
		return 0, raftnode.ErrNotLeader
	}
	f := c.raft.Apply(cmd.Encode(), timeoutOf(ctx))
	if err := wait(ctx, f); err != nil {
		return 0, err
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return 0, err
	}
	return f.Index(), nil
}

// Barrier waits, on the leader, until this replica's map holds every entry committed
// before (a new leader's map may lag its predecessor's until then).
func (c *controller) Barrier(ctx context.Context) error {
	if !c.IsLeader() {
		return raftnode.ErrNotLeader
	}
	return wait(ctx, c.raft.Barrier(timeoutOf(ctx)))
}

// Members is the controller group's configuration.
func (c *controller) Members() ([]raft.Server, error) {
	f := c.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	return f.Configuration().Servers, nil
}

// AddMember adds a node to the controller group: as a voter while it has fewer than
// clustermap.MaxControllerVoters, else as a non-voter that follows the map.
func (c *controller) AddMember(ctx context.Context, id, raftAddr string) error {
	servers, err := c.Members()
	if err != nil {
		return fmt.Errorf("controller: read configuration: %w", err)
	}
	voters := 0
	for _, s := range servers {
		if string(s.ID) == id {
			if string(s.Address) != raftAddr {
				return fmt.Errorf("%w: node %s is a member at %s", raftnode.ErrMemberElsewhere, id, s.Address)
			}
			return nil
		}
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	var f raft.IndexFuture
	if voters < clustermap.MaxControllerVoters {
		f = c.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, timeoutOf(ctx))
	} else {
		f = c.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, timeoutOf(ctx))
	}
	return wait(ctx, f)
}

// RemoveMember removes a node from the controller group.
func (c *controller) RemoveMember(ctx context.Context, id string) error {
	return wait(ctx, c.raft.RemoveServer(raft.ServerID(id), 0, timeoutOf(ctx)))
}

// Close stops the replica, handing leadership over first when it can.
func (c *controller) Close(ctx context.Context) error {
	if c.IsLeader() {
		if servers, err := c.Members(); err == nil && voterCount(servers) > 1 {
			_ = wait(ctx, c.raft.LeadershipTransfer())
		}
	}
	err := c.raft.Shutdown().Error()
	if cl, ok := c.trans.(interface{ Close() error }); ok {
		err = errors.Join(err, cl.Close())
	}
	return errors.Join(err, c.bolt.Close())
}

func voterCount(servers []raft.Server) int {
	n := 0
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			n++
		}
	}
	return n
}

func timeoutOf(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return 10 * time.Second
}

// wait waits for a Raft future or ctx.
func wait(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", raftnode.ErrUnknownOutcome, ctx.Err())
	case err := <-done:
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return raftnode.ErrNotLeader
		}
		return err
	}
}

const raftVoter = raft.Voter

// Demote makes a controller voter a non-voter.
func (c *controller) Demote(ctx context.Context, id string) error {
	return wait(ctx, c.raft.DemoteVoter(raft.ServerID(id), 0, timeoutOf(ctx)))
}

// Promote makes a controller non-voter a voter.
func (c *controller) Promote(ctx context.Context, id, raftAddr string) error {
	return wait(ctx, c.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, timeoutOf(ctx)))
}

// TransferTo hands the controller's leadership to voter id at raftAddr.
func (c *controller) TransferTo(ctx context.Context, id, raftAddr string) error {
	return wait(ctx, c.raft.LeadershipTransferToServer(raft.ServerID(id), raft.ServerAddress(raftAddr)))
}
