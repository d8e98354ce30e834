package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// publisherState is what a Publisher with a StatePath keeps on disk: enough to resume
// without ever reusing a seq, and the last batch sent, which may not have been applied.
type publisherState struct {
	ProducerID string `json:"producer_id"`
	Stream     string `json:"stream"`
	// NextSeq is the seq of the next new batch: every seq below it may have been sent.
	NextSeq uint64 `json:"next_seq"`
	// Pending is the last batch sent, unless the publisher was closed after it was
	// acknowledged. A restarted publisher sends it again, with its seq, first: the cluster
	// applies it unless it already did.
	Pending *stateBatch `json:"pending,omitempty"`
}

// stateBatch is a batch as the state file keeps it.
type stateBatch struct {
	Seq    uint64            `json:"seq"`
	Events []json.RawMessage `json:"events"`
}

// loadState reads the state at path; ok is false when there is no file.
func loadState(path string) (st publisherState, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("read publisher state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, false, fmt.Errorf("publisher state %s is corrupt: %w", path, err)
	}
	switch {
	case st.ProducerID == "":
		return st, false, fmt.Errorf("publisher state %s has no producer_id", path)
	case st.NextSeq == 0:
		return st, false, fmt.Errorf("publisher state %s has no next_seq", path)
	case st.Pending != nil && st.Pending.Seq >= st.NextSeq:
		return st, false, fmt.Errorf("publisher state %s: pending batch seq %d is not below next_seq %d", path, st.Pending.Seq, st.NextSeq)
	}
	return st, true, nil
}

// saveState replaces the state at path durably: written to a temporary file, fsynced,
// renamed over the old one, and the directory fsynced.
func saveState(path string, st *publisherState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode publisher state: %w", err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save publisher state: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("save publisher state %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("save publisher state: open directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("save publisher state: sync directory %s: %w", dir, err)
	}
	return nil
}
