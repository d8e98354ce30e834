package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/raftnode"
)

// noopFSM applies nothing.
type noopFSM struct{ applied atomic.Uint64 }

func (f *noopFSM) Apply(*raft.Log) any {
	f.applied.Add(1)
	return nil
}
func (f *noopFSM) Snapshot() (raft.FSMSnapshot, error) { return noopSnap{}, nil }
func (f *noopFSM) Restore(r io.ReadCloser) error       { return r.Close() }

type noopSnap struct{}

func (noopSnap) Persist(s raft.SnapshotSink) error { return s.Close() }
func (noopSnap) Release()                          {}

// tallyEntry encodes a KindBatch command of n TradeStream events, one part, as Tally's commit
// loop would for one request of n events.
func tallyEntry(n int) ([]byte, error) {
	now := time.Now().UnixMilli()
	evs := make([]expr.Row, n)
	for i := range evs {
		evs[i] = expr.Row{expr.String(fmt.Sprintf("S%06d", (i*7919)%1000)), expr.Double(float64(1+(i*37)%100000) / 100),
			expr.Long(int64(1 + i%100)), expr.Long(now)}
	}
	c := fsm.Command{Kind: fsm.KindBatch, Time: now, Parts: []fsm.Part{{Stream: "TradeStream", ProducerID: "bench-0123abcd-1", Seq: 12345, Events: evs}}}
	return c.MarshalBinary()
}

type raftResult struct {
	Mode            string  `json:"mode"`
	EventsPerEntry  int     `json:"events_per_entry"`
	EntryBytes      int     `json:"entry_bytes"`
	Proposers       int     `json:"proposers"`
	DurationS       float64 `json:"duration_s"`
	Entries         int64   `json:"entries"`
	EntriesPerS     float64 `json:"entries_per_s"`
	EventsPerS      float64 `json:"events_per_s"`
	MBPerS          float64 `json:"mb_per_s"`
	MeanLatencyMS   float64 `json:"mean_latency_ms"`
	FollowerApplied uint64  `json:"follower_applied"`
}

func raftMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("raft", flag.ContinueOnError)
	events := fs.Int("events", 1000, "events per entry (the entry is a Tally batch of this many events)")
	proposers := fs.Int("proposers", 8, "concurrent proposers, each with one Apply in flight")
	duration := fs.Duration("duration", 10*time.Second, "how long to propose")
	dir := fs.String("dir", "", "data directory (default: a temporary one, removed at the end)")
	logStore := fs.String("log-store", raftnode.LogStoreWAL, "the Raft log store, opened as a replica opens it: wal (raft-wal) or bolt (raft-boltdb)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *logStore != raftnode.LogStoreWAL && *logStore != raftnode.LogStoreBolt {
		return fmt.Errorf("--log-store must be %s or %s, got %q", raftnode.LogStoreWAL, raftnode.LogStoreBolt, *logStore)
	}
	data, err := tallyEntry(*events)
	if err != nil {
		return err
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "tally-bench-raft-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	dc := raftnode.DefaultConfig()
	logger := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: os.Stderr})

	type replica struct {
		r     *raft.Raft
		fsm   *noopFSM
		store raftnode.LogStore
		trans *raft.NetworkTransport
	}
	var reps []*replica
	defer func() {
		for _, p := range reps {
			if p.r != nil {
				_ = p.r.Shutdown().Error()
			}
			_ = p.trans.Close()
			_ = p.store.Close()
		}
	}()
	var servers []raft.Server
	for i := range 3 {
		trans, err := raft.NewTCPTransportWithLogger("127.0.0.1:0", nil, 3, 10*time.Second, logger)
		if err != nil {
			return err
		}
		d := filepath.Join(*dir, fmt.Sprintf("r%d", i+1))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		store, _, err := raftnode.OpenLogStore(d, *logStore, 0) // fsync on every append
		if err != nil {
			trans.Close()
			return err
		}
		reps = append(reps, &replica{fsm: &noopFSM{}, store: store, trans: trans})
		servers = append(servers, raft.Server{ID: raft.ServerID(fmt.Sprintf("r%d", i+1)), Address: trans.LocalAddr()})
	}
	for i, p := range reps {
		rc := raft.DefaultConfig()
		rc.LocalID = servers[i].ID
		rc.HeartbeatTimeout, rc.ElectionTimeout = dc.HeartbeatTimeout, dc.ElectionTimeout
		rc.LeaderLeaseTimeout, rc.CommitTimeout = dc.LeaderLeaseTimeout, dc.CommitTimeout
		rc.SnapshotInterval, rc.SnapshotThreshold, rc.TrailingLogs = dc.SnapshotInterval, dc.SnapshotThreshold, dc.TrailingLogs
		rc.BatchApplyCh = true
		rc.Logger = logger
		logs, err := raft.NewLogCache(512, p.store)
		if err != nil {
			return err
		}
		snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(*dir, string(servers[i].ID)), 2, logger)
		if err != nil {
			return err
		}
		if err := raft.BootstrapCluster(rc, logs, p.store, snaps, p.trans, raft.Configuration{Servers: servers}); err != nil {
			return err
		}
		if p.r, err = raft.NewRaft(rc, p.fsm, logs, p.store, snaps, p.trans); err != nil {
			return err
		}
	}
	var leader *replica
	deadline := time.Now().Add(20 * time.Second)
	for leader == nil {
		for _, p := range reps {
			if p.r.State() == raft.Leader {
				leader = p
			}
		}
		if leader == nil {
			if time.Now().After(deadline) {
				return errors.New("no leader within 20s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := leader.r.Barrier(10 * time.Second).Error(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "tally-bench raft: 3 replicas on %s, %s, %s; %d proposers of %d-byte entries (%d events) for %v\n",
		servers[0].Address, servers[1].Address, servers[2].Address, *proposers, len(data), *events, *duration)

	var entries, latSum atomic.Int64
	var firstErr error
	var errOnce sync.Once
	start := time.Now()
	end := start.Add(*duration)
	var wg sync.WaitGroup
	for range *proposers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				t := time.Now()
				if err := leader.r.Apply(data, 10*time.Second).Error(); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				latSum.Add(int64(time.Since(t)))
				entries.Add(1)
			}
		})
	}
	stop := progress(&entries, "tally-bench raft: %d entries/s")
	wg.Wait()
	stop()
	el := time.Since(start).Seconds()
	if firstErr != nil {
		return firstErr
	}
	n := entries.Load()
	var fa uint64 = ^uint64(0)
	for _, p := range reps {
		if p != leader {
			fa = min(fa, p.fsm.applied.Load())
		}
	}
	res := raftResult{Mode: "raft", EventsPerEntry: *events, EntryBytes: len(data), Proposers: *proposers, DurationS: el,
		Entries: n, EntriesPerS: float64(n) / el, EventsPerS: float64(n) * float64(*events) / el,
		MBPerS: float64(n) * float64(len(data)) / el / 1e6, FollowerApplied: fa}
	if n > 0 {
		res.MeanLatencyMS = float64(latSum.Load()) / float64(n) / 1e6
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
