package fsm

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"testing"
)

// withChecksum frames body as a snapshot of version v, so the fuzzer gets past the CRC.
func withChecksum(v byte, body []byte) []byte {
	out := append([]byte(SnapshotMagic), v)
	out = append(out, body...)
	return binary.LittleEndian.AppendUint32(out, crc32.Checksum(body, crcTable))
}

// FuzzRestore feeds arbitrary snapshot bodies (framed with a valid header and checksum) to
// Restore: it either refuses them with ErrBadSnapshot, leaving the FSM as it was, or
// restores a state that encodes and restores again to the same bytes.
func FuzzRestore(f *testing.F) {
	good := newFSM(f, Config{})
	apply(f, good, logOf(f, 1, workloads()["batch"]...))
	f.Add(byte(SnapshotVersion), state(f, good))
	if v1, err := os.ReadFile("testdata/snapshot-v1.golden"); err == nil && len(v1) > 13 {
		f.Add(byte(1), v1[9:len(v1)-4])
	}
	f.Add(byte(2), []byte{0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, version byte, body []byte) {
		fm := newFSM(t, Config{})
		before := state(t, fm)
		if err := restore(t, fm, withChecksum(version, body)); err != nil {
			if !bytes.Equal(state(t, fm), before) {
				t.Fatalf("a refused snapshot changed the state: %v", err)
			}
			return
		}
		st := state(t, fm)
		again := newFSM(t, Config{})
		if err := restore(t, again, withChecksum(SnapshotVersion, st)); err != nil {
			t.Fatalf("a restored state does not restore again: %v", err)
		}
		if !bytes.Equal(state(t, again), st) {
			t.Fatal("restore is not stable")
		}
	})
}
