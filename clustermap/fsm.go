package clustermap

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// FSM is the controller group's Raft state machine: the map, and a way to wait for it to
// change. Safe for concurrent use.
type FSM struct {
	mu      sync.Mutex
	m       Map
	changed chan struct{}
}

// NewFSM returns an FSM holding the empty map.
func NewFSM() *FSM { return &FSM{changed: make(chan struct{})} }

// Map returns a copy of the current map and a channel closed at its next change.
func (f *FSM) Map() (Map, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m.Clone(), f.changed
}

func (f *FSM) set(m Map) {
	f.mu.Lock()
	f.m = m
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// Apply applies a command entry; it returns nil or the error of a refused command.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	var c Command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return fmt.Errorf("%w: undecodable command: %w", ErrRefused, err)
	}
	f.mu.Lock()
	m := f.m.Clone()
	f.mu.Unlock()
	if err := m.Apply(l.Index, c); err != nil {
		return err
	}
	f.set(m)
	return nil
}

// Snapshot captures the map.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.Marshal(f.m)
	if err != nil {
		return nil, fmt.Errorf("clustermap: snapshot: %w", err)
	}
	return snapshot(b), nil
}

// Restore replaces the map with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var m Map
	if err := json.NewDecoder(io.LimitReader(rc, 64<<20)).Decode(&m); err != nil {
		return fmt.Errorf("clustermap: restore: %w", err)
	}
	f.set(m)
	return nil
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("clustermap: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s snapshot) Release() {}
