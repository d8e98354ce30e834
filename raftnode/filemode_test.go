package raftnode

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-db/tally/fsm"
)

// TestFileModes: a node's data dir and everything in it (the Raft WAL's segments and meta database, snapshots and their
// state.bin and meta.json) are 0700/0600 after it has run and snapshotted, and a data dir
// left group/world readable by an older version is tightened on start, with a log line.
func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n0")
	// What an older version left: a readable dir with a readable file in it.
	if err := os.MkdirAll(filepath.Join(dir, "snapshots"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "old-file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // MkdirAll's mode is masked by the umask
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.DataDir = dir
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	if !strings.Contains(logs.String(), "data dir was readable by group or others") || !strings.Contains(logs.String(), "entries=3") {
		t.Errorf("no log line about the tightened data dir:\n%s", logs.String())
	}
	leader := c.waitLeader(testTimeout)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if _, _, err := leader.Deploy(ctx, alertApp("http://127.0.0.1:9/x")); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.Ingest(ctx, []fsm.Part{part("p", 1, row("a", 1))}); err != nil {
		t.Fatal(err)
	}
	if err := leader.Snapshot(); err != nil {
		t.Fatal(err)
	}
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := FileMode
		if d.IsDir() {
			want = DirMode
		} else {
			files++
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s is %#o, want %#o", path, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, walDir, "*.wal")); len(segs) == 0 {
		t.Errorf("no WAL segment in %s: the walk did not see the Raft log", filepath.Join(dir, walDir))
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
	if len(snaps) == 0 || files < 4 {
		t.Errorf("walked %d files, snapshots %v: the node wrote less than expected", files, snaps)
	}
}
