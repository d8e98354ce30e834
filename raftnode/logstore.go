package raftnode

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// The Raft log stores a replica can keep its log and term in (Config.LogStore).
const (
	// LogStoreWAL is hashicorp/raft-wal: append-only segment files, one fsync per
	// append. The default for a new replica.
	LogStoreWAL = "wal"
	// LogStoreBolt is raft-boltdb/v2 on bbolt (`raft.db`): a B+tree whose every commit
	// writes pages and then its meta page, two fdatasyncs per append.
	LogStoreBolt = "bolt"
)

const (
	boltFile = "raft.db" // LogStoreBolt's file in the data dir
	walDir   = "wal"     // LogStoreWAL's directory in the data dir
)

// The size of the WAL's segment files (Config.WALSegmentBytes). raft-wal's default of 64 MiB
// per replica adds up on a node hosting many groups; 16 MiB still holds hundreds of
// 1000-event entries, and a full segment is sealed and a new one started without stopping
// appends.
const (
	DefaultWALSegmentBytes = 16 << 20
	MinWALSegmentBytes     = 4 << 10
	MaxWALSegmentBytes     = 1 << 30
)

// LogStore is a Raft log and stable store, as a replica opens it (OpenLogStore).
type LogStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// HasLog reports whether dir holds a replica's Raft log, in either store.
func HasLog(dir string) bool {
	kind, err := existingLogStore(dir)
	return err == nil && kind != ""
}

// existingLogStore names the log store dir holds: "" for none.
func existingLogStore(dir string) (string, error) {
	var found []string
	if _, err := os.Stat(filepath.Join(dir, boltFile)); err == nil {
		found = append(found, LogStoreBolt)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("look for the Raft log in %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, walDir)); err == nil {
		found = append(found, LogStoreWAL)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("look for the Raft log in %s: %w", dir, err)
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("data dir %s holds both a bolt Raft log (%s) and a WAL (%s/): remove the one this replica does not use", dir, boltFile, walDir)
}

// OpenLogStore opens the Raft log store in dir, as a replica does (tally-bench raft measures
// raw Raft on it). A replica keeps the store it was created with: want ("" for any) must
// match what dir holds, and names the store of a new replica ("" meaning LogStoreWAL).
// segmentBytes sizes the WAL's new segments (0: the default). It returns the store's kind.
func OpenLogStore(dir, want string, segmentBytes int) (LogStore, string, error) {
	have, err := existingLogStore(dir)
	if err != nil {
		return nil, "", err
	}
	kind := have
	switch {
	case have == "" && want == "":
		kind = LogStoreWAL
	case have == "":
		kind = want
	case want != "" && want != have:
		return nil, "", fmt.Errorf("data dir %s holds a %s Raft log, not %s: a replica keeps the log store it was created with (leave the log store unset to open what is there)", dir, have, want)
	}
	switch kind {
	case LogStoreBolt:
		path := filepath.Join(dir, boltFile)
		b, err := raftboltdb.New(raftboltdb.Options{Path: path})
		if err != nil {
			return nil, "", fmt.Errorf("open raft log %s: %w", path, err)
		}
		return b, kind, nil
	case LogStoreWAL:
		path := filepath.Join(dir, walDir)
		if err := os.MkdirAll(path, DirMode); err != nil {
			return nil, "", fmt.Errorf("create raft log dir %s: %w", path, err)
		}
		if segmentBytes == 0 {
			segmentBytes = DefaultWALSegmentBytes
		}
		w, err := raftwal.Open(path, raftwal.WithSegmentSize(segmentBytes),
			raftwal.WithSegmentFiler(segment.NewFiler(path, privateVFS{walfs.New()})))
		if err != nil {
			return nil, "", fmt.Errorf("open raft log %s: %w", path, err)
		}
		// raft-wal creates its meta database readable by others; the data dir is private.
		if _, err := tighten(path); err != nil {
			w.Close()
			return nil, "", fmt.Errorf("open raft log %s: %w", path, err)
		}
		return w, kind, nil
	}
	return nil, "", fmt.Errorf("unknown Raft log store %q: want %s or %s", kind, LogStoreWAL, LogStoreBolt)
}

// privateVFS creates the WAL's segment files with FileMode, like every file of a data dir.
type privateVFS struct{ types.VFS }

func (v privateVFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	f, err := v.VFS.Create(dir, name, size)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(filepath.Join(dir, name), FileMode); err != nil {
		f.Close()
		return nil, fmt.Errorf("restrict raft log segment %s: %w", name, err)
	}
	return f, nil
}
