package raftnode

import (
	"github.com/hashicorp/raft"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogStore_Choice: a new replica gets the WAL unless told bolt; a replica reopens the
// store it has whatever it is told by default, and refuses to be opened as the other one
// or with both in its dir, naming the problem.
func TestLogStore_Choice(t *testing.T) {
	open := func(t *testing.T, dir, want string) (string, error) {
		t.Helper()
		st, kind, err := OpenLogStore(dir, want, 0)
		if err != nil {
			return "", err
		}
		// The store works: what is set is read back after reopening.
		if err := st.SetUint64([]byte("k"), 7); err != nil {
			t.Fatal(err)
		}
		st = reopen(t, st, dir)
		defer st.Close()
		if v, err := st.GetUint64([]byte("k")); v != 7 || err != nil {
			t.Fatalf("reopened %s store: k = %d, %v; want 7", kind, v, err)
		}
		return kind, nil
	}
	for _, tc := range []struct{ first, again, want, wantErr string }{
		{"", "", LogStoreWAL, ""},
		{LogStoreWAL, "", LogStoreWAL, ""},
		{LogStoreBolt, "", LogStoreBolt, ""},
		{LogStoreBolt, LogStoreBolt, LogStoreBolt, ""},
		{LogStoreBolt, LogStoreWAL, "", "holds a bolt Raft log, not wal"},
		{"", LogStoreBolt, "", "holds a wal Raft log, not bolt"},
	} {
		t.Run(tc.first+"-then-"+tc.again, func(t *testing.T) {
			dir := t.TempDir()
			if HasLog(dir) {
				t.Fatal("an empty dir has a log")
			}
			if _, err := open(t, dir, tc.first); err != nil {
				t.Fatal(err)
			}
			if !HasLog(dir) {
				t.Fatal("no log found after opening one")
			}
			kind, err := open(t, dir, tc.again)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || kind != tc.want {
				t.Fatalf("reopened as %q (%v), want %s", kind, err, tc.want)
			}
		})
	}
	t.Run("both", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := open(t, dir, LogStoreBolt); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(dir, walDir), DirMode); err != nil {
			t.Fatal(err)
		}
		if _, _, err := OpenLogStore(dir, "", 0); err == nil || !strings.Contains(err.Error(), "both a bolt Raft log") {
			t.Fatalf("err = %v, want one naming both stores", err)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		if _, _, err := OpenLogStore(t.TempDir(), "rocks", 0); err == nil || !strings.Contains(err.Error(), `"rocks"`) {
			t.Fatalf("err = %v, want one naming the store", err)
		}
		cfg := DefaultConfig()
		cfg.LogStore = "rocks"
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "LogStore") {
			t.Fatalf("Validate: %v, want an error naming LogStore", err)
		}
	})
}

// TestLogStore_TailTruncationSurvivesRestart: Raft truncates a log's tail when a new leader's
// log disagrees with it; on either store the replica must then reopen, read every entry
// and append again. (raft-wal v0.4.0 sealed the segment without its index here, and the
// reopened replica could not read its log.)
func TestLogStore_TailTruncationSurvivesRestart(t *testing.T) {
	for _, store := range []string{LogStoreWAL, LogStoreBolt} {
		t.Run(store, func(t *testing.T) {
			dir := t.TempDir()
			st, _, err := OpenLogStore(dir, store, 0)
			if err != nil {
				t.Fatal(err)
			}
			var logs []*raft.Log
			for i := uint64(1); i <= 10; i++ {
				logs = append(logs, &raft.Log{Index: i, Term: 1, Data: []byte{byte(i)}})
			}
			if err := st.StoreLogs(logs); err != nil {
				t.Fatal(err)
			}
			if err := st.DeleteRange(9, 10); err != nil { // the tail the new leader lacks
				t.Fatal(err)
			}
			if err := st.StoreLogs([]*raft.Log{{Index: 9, Term: 2, Data: []byte{90}}}); err != nil {
				t.Fatal(err)
			}
			st = reopen(t, st, dir)
			defer st.Close()
			last, err := st.LastIndex()
			if err != nil || last != 9 {
				t.Fatalf("last index %d (%v), want 9", last, err)
			}
			for i := uint64(1); i <= 9; i++ {
				var l raft.Log
				if err := st.GetLog(i, &l); err != nil {
					t.Fatalf("entry %d after reopening: %v", i, err)
				}
				want := byte(i)
				if i == 9 {
					want = 90
				}
				if l.Data[0] != want {
					t.Fatalf("entry %d holds %d, want %d", i, l.Data[0], want)
				}
			}
			if err := st.StoreLogs([]*raft.Log{{Index: 10, Term: 2, Data: []byte{100}}}); err != nil {
				t.Fatalf("append after reopening: %v", err)
			}
		})
	}
}

// reopen closes st and opens dir's store again as a restarted replica does (whatever store
// it holds); the caller closes it.
func reopen(t *testing.T, st LogStore, dir string) LogStore {
	t.Helper()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, _, err := OpenLogStore(dir, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
