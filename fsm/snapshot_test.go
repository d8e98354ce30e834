package fsm

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestSnapshotFormat(t *testing.T) {
	f := newFSM(t, Config{GroupID: 3})
	apply(t, f, logOf(t, 1, workloads()["batch"]...))
	snap := snapshotBytes(t, f)
	if !bytes.HasPrefix(snap, []byte("TALLYSNP\x02")) {
		t.Fatalf("snapshot starts % x", snap[:9])
	}
	if body := state(t, f); !bytes.Equal(snap[9:len(snap)-4], body) {
		t.Fatal("the snapshot body is not State()")
	}
}

// TestSnapshotCaptures: Persist writes the state of Snapshot's moment, not a later one.
func TestSnapshotCaptures(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	logs := logOf(t, 1, workloads()["batch"]...)
	apply(t, f, logs[:3])
	want := state(t, f)
	s, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	apply(t, f, logs[3:])
	var sink memSink
	if err := s.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	s.Release()
	if !bytes.Equal(sink.Bytes()[9:sink.Len()-4], want) {
		t.Fatal("Persist wrote state applied after Snapshot")
	}
}

func TestPersistCancelsOnError(t *testing.T) {
	f := newFSM(t, DefaultConfig())
	for at := 1; at <= 3; at++ {
		s, err := f.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		sink := &memSink{failAt: at}
		if err := s.Persist(sink); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("write %d failing: Persist = %v", at, err)
		}
		if !sink.cancelled || sink.closed {
			t.Errorf("write %d failing: cancelled=%v closed=%v", at, sink.cancelled, sink.closed)
		}
		s.Release()
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }
func (errReader) Close() error             { return nil }

// TestRestoreBadSnapshot: every bad snapshot is refused and leaves the FSM as it was.
func TestRestoreBadSnapshot(t *testing.T) {
	src := newFSM(t, Config{GroupID: 1})
	apply(t, src, logOf(t, 1, workloads()["mixed"]...))
	good := snapshotBytes(t, src)
	other := newFSM(t, Config{GroupID: 2})
	apply(t, other, logOf(t, 1, workloads()["batch"]...))
	otherGroup := snapshotBytes(t, other)

	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		return b
	}
	// A body with a valid checksum but trailing garbage.
	trailing := append(bytes.Clone(good[:len(good)-4]), 0)
	var withCRC bytes.Buffer
	if err := writeSnapshot(&withCRC, trailing[9:]); err != nil {
		t.Fatal(err)
	}
	// A body with a valid checksum but a corrupt engine state.
	body := bytes.Clone(good[9 : len(good)-4])
	body[3] ^= 0xff // inside the engine bytes (after group, applied index and length)
	var badEngine bytes.Buffer
	if err := writeSnapshot(&badEngine, body); err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":         nil,
		"short":         good[:10],
		"magic":         flip(0),
		"version":       flip(8),
		"crc":           flip(len(good) - 1),
		"body bit":      flip(len(good) / 2),
		"truncated":     good[:len(good)-1],
		"other group":   otherGroup,
		"trailing body": withCRC.Bytes(),
		"bad engine":    badEngine.Bytes(),
	}
	f := newFSM(t, Config{GroupID: 1})
	apply(t, f, logOf(t, 1, workloads()["batch"]...))
	before, idx := state(t, f), f.AppliedIndex()
	for _, name := range sortedKeys(cases) {
		if err := restore(t, f, cases[name]); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: Restore = %v, want ErrBadSnapshot", name, err)
		}
		if !bytes.Equal(state(t, f), before) || f.AppliedIndex() != idx {
			t.Fatalf("%s: a refused snapshot changed the FSM", name)
		}
	}
	if err := f.Restore(errReader{}); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("read error: %v", err)
	}
	// And the good one still restores, replacing everything.
	if err := restore(t, f, good); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(state(t, f), state(t, src)) || f.AppliedIndex() != src.AppliedIndex() {
		t.Fatal("restore did not replace the state")
	}
	if f.Stats().Restores != 1 {
		t.Errorf("Restores = %d", f.Stats().Restores)
	}
	var _ io.ReadCloser = errReader{}
}
