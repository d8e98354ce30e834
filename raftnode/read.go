package raftnode

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/fsm"
)

// ErrStoreRead: a query could not read the shared store.
var ErrStoreRead = errors.New("raftnode: read the shared store")

// Consistency is the read level a query asks for.
type Consistency uint8

// Read levels.
const (
	// Linearizable reads are served by the leader after it confirms it still leads and has
	// applied everything committed when the read arrived (rqlite's recipe).
	Linearizable Consistency = iota
	// Stale reads are served by any replica from what it has applied.
	Stale
	// Stored reads answer from the shared store alone: what an external SQL reader sees.
	Stored
)

// ParseConsistency reads "linearizable" (or "", the default), "strong", "stale" or "stored".
func ParseConsistency(s string) (Consistency, error) {
	switch s {
	case "", "linearizable", "strong":
		return Linearizable, nil
	case "stale", "none":
		return Stale, nil
	case "stored":
		return Stored, nil
	}
	return 0, fmt.Errorf("raftnode: unknown consistency %q: use linearizable, stale or stored", s)
}

// MemoryRows plans a store query on an aggregation of app and returns this replica's
// in-memory rows of the plan's table and window (copies, tagged with the group's shard ID),
// read at consistency c (Linearizable or Stale, with minIndex). With Stored it only plans.
func (n *Node) MemoryRows(ctx context.Context, c Consistency, minIndex uint64, app, query string) (*agg.Plan, []agg.ShardRow, error) {
	var plan *agg.Plan
	var mem []agg.ShardRow
	var qerr error
	collect := func(e fsm.View) {
		if plan, qerr = e.Plan(app, query); qerr != nil || c == Stored {
			return
		}
		for _, r := range e.Rows(app, plan) {
			if t := plan.Bucket(r); t >= plan.Start && t < plan.End {
				mem = append(mem, agg.ShardRow{Row: r.Clone()})
			}
		}
	}
	if c == Stored {
		n.fsm.Read(collect)
	} else if err := n.Read(ctx, c, minIndex, collect); err != nil {
		return nil, nil, err
	}
	// The shard ID comes from the FSM's catalog (no lock); it never changes once set.
	shard, _ := n.fsm.ShardID()
	for i := range mem {
		mem[i].Shard = shard
	}
	return plan, mem, qerr
}

// Query answers a store query on an aggregation of app from this group alone: its
// in-memory rows (MemoryRows) merged with the shared store's rows of every shard, the newer
// index winning per primary key. Stored answers from the store alone. Memory is read before
// the store, so a row flushed and dropped in between is still seen.
func (n *Node) Query(ctx context.Context, c Consistency, minIndex uint64, app, query string) (*agg.Result, error) {
	if c == Stored && n.cfg.Store == nil {
		return nil, fmt.Errorf("raftnode: consistency=stored needs a shared store, and this node has none")
	}
	plan, mem, err := n.MemoryRows(ctx, c, minIndex, app, query)
	if err != nil {
		return nil, err
	}
	var stored []agg.ShardRow
	if n.cfg.Store != nil {
		if stored, err = n.cfg.Store.Read(ctx, plan.Def, plan.Per, plan.Start, plan.End); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStoreRead, err)
		}
	}
	return plan.Run(agg.Newest(stored, mem))
}

// Read runs fn over a read-only view of the engine (fsm.View) at the requested consistency.
// With minIndex > 0 it first waits (bounded by ctx) until this replica has applied that
// index, so a client can read its own writes on any replica. Linearizable reads on a
// follower return ErrNotLeader.
func (n *Node) Read(ctx context.Context, c Consistency, minIndex uint64, fn func(fsm.View)) error {
	if c == Linearizable {
		if n.raft.State() != raft.Leader {
			return ErrNotLeader
		}
		if n.readyTerm.Load() != n.raft.CurrentTerm() {
			// A fresh leader has not yet applied its predecessors' entries.
			if err := n.waitReady(ctx); err != nil {
				return err
			}
		}
		commit := n.raft.CommitIndex()
		if err := waitFuture(ctx, n.raft.VerifyLeader()); err != nil {
			return err
		}
		target, err := n.lastCommandAtOrBelow(ctx, commit)
		if err != nil {
			return err
		}
		minIndex = max(minIndex, target)
	}
	if err := n.WaitApplied(ctx, minIndex); err != nil {
		return err
	}
	n.fsm.Read(fn)
	return nil
}

// lastCommandAtOrBelow is the index of the last command entry at or below index: the FSM
// only sees command entries, so that is the index it must reach to reflect everything up to
// index. Entries compacted into a snapshot are already in the FSM's state. If no command
// shows up within a few entries (a run of configuration changes, say), a barrier settles it.
func (n *Node) lastCommandAtOrBelow(ctx context.Context, index uint64) (uint64, error) {
	const scan = 16
	for i := index; i > 0 && index-i < scan; i-- {
		var l raft.Log
		if err := n.logs.GetLog(i, &l); err != nil {
			return 0, nil // compacted: covered by the snapshot the FSM restored or took
		}
		if l.Type == raft.LogCommand {
			return i, nil
		}
	}
	if err := waitFuture(ctx, n.raft.Barrier(n.timeout(ctx))); err != nil {
		return 0, err
	}
	return 0, nil
}

func (n *Node) waitReady(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for n.readyTerm.Load() != n.raft.CurrentTerm() {
		if n.raft.State() != raft.Leader {
			return ErrNotLeader
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.stop:
			return ErrClosed
		case <-t.C:
		}
	}
	return nil
}

// WaitApplied waits until this replica's FSM has applied index, or ctx ends.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	if n.fsm.AppliedIndex() >= index {
		return nil
	}
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for n.fsm.AppliedIndex() < index {
		select {
		case <-ctx.Done():
			return fmt.Errorf("raftnode: waiting for index %d (applied %d): %w", index, n.fsm.AppliedIndex(), ctx.Err())
		case <-n.stop:
			return ErrClosed
		case <-t.C:
		}
	}
	return nil
}
