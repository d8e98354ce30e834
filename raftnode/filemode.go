package raftnode

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Modes of everything a node writes in its data directory: only the user the node runs as
// may read it (the Raft log and snapshots hold app texts, sink credentials and events).
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// SecureDir creates dir (DirMode) when missing and takes away group and other
// permissions from it and everything under it, logging what it changed (a data directory
// written by an older version, or copied with looser modes). Symbolic links are left alone.
func SecureDir(dir string, logger *slog.Logger) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("create data dir %s: %w", dir, err)
	}
	n, err := tighten(dir)
	if n > 0 && logger != nil {
		logger.Warn("data dir was readable by group or others: took those permissions away", "dir", dir, "entries", n)
	}
	return err
}

// tighten removes group and other permissions under root and returns how many entries it
// changed.
func tighten(root string) (int, error) {
	changed := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking (a snapshot reaped)
			}
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(path, perm&^0o077); err != nil {
				return fmt.Errorf("restrict permissions of %s: %w", path, err)
			}
			changed++
		}
		return nil
	})
	return changed, err
}

// privateSnapshots is raft's file snapshot store with the modes of each snapshot it
// writes (raft creates them 0755/0666 less the umask) tightened once it is complete.
type privateSnapshots struct {
	raft.SnapshotStore
	dir    string // the store's snapshots directory
	logger *slog.Logger
	// persisted, when set, is told how long each completed snapshot took to write.
	persisted func(time.Duration)
}

// newPrivateSnapshots opens raft's file snapshot store in dir and restricts its
// snapshots directory.
func newPrivateSnapshots(dir string, retain int, hlog hclog.Logger, logger *slog.Logger) (*privateSnapshots, error) {
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, retain, hlog)
	if err != nil {
		return nil, err
	}
	p := &privateSnapshots{SnapshotStore: snaps, dir: filepath.Join(dir, "snapshots"), logger: logger}
	if _, err := tighten(p.dir); err != nil {
		return nil, err
	}
	return p, nil
}

// Create implements raft.SnapshotStore.
func (p *privateSnapshots) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := p.SnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	return &privateSink{SnapshotSink: sink, p: p, start: time.Now()}, nil
}

type privateSink struct {
	raft.SnapshotSink
	p     *privateSnapshots
	start time.Time
	done  bool // Close completed once (the FSM's Persist closes the sink, then raft again)
}

// Close completes the snapshot, then restricts its directory and files.
func (s *privateSink) Close() error {
	if err := s.SnapshotSink.Close(); err != nil {
		return err
	}
	if s.p.persisted != nil && !s.done {
		s.p.persisted(time.Since(s.start))
	}
	s.done = true
	if _, err := tighten(filepath.Join(s.p.dir, s.ID())); err != nil {
		s.p.logger.Warn("cannot restrict the permissions of a snapshot", "id", s.ID(), "err", err)
	}
	return nil
}

// NewPrivateSnapshots is a file snapshot store in dir/snapshots whose directories and files
// only the owner can read (snapshots hold app texts with sink credentials, and events).
func NewPrivateSnapshots(dir string, retain int, hlog hclog.Logger, logger *slog.Logger) (raft.SnapshotStore, error) {
	return newPrivateSnapshots(dir, retain, hlog, logger)
}
