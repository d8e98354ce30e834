package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/internal/wire"
)

// Snapshot file layout: SnapshotMagic, one version byte, the state body (see State), and the
// CRC-32C of the body, little-endian. Version 2 added each producer's last applied time to
// the dedup table; version 1 is still read.
const (
	SnapshotMagic   = "TALLYSNP"
	SnapshotVersion = 2
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// State encodes the replicated state: the bytes a snapshot body holds. Replicas that applied
// the same log return identical bytes. It takes the read lock.
func (f *FSM) State() ([]byte, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.stateLocked()
}

// StateHash is the hex SHA-256 of State, for comparing replicas; "" if encoding fails.
func (f *FSM) StateHash() string {
	b, err := f.State()
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// stateLocked encodes the body: group ID, applied index, engine state (length-prefixed), the
// dedup table sorted by producer, the shard ID, the flushed index and the outbox. f.mu must be held.
func (f *FSM) stateLocked() ([]byte, error) {
	eng, err := f.eng.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("fsm: encode engine: %w", err)
	}
	w := wire.Writer{Buf: make([]byte, 0, len(eng)+32+64*f.dedup.Len())}
	w.Uvarint(uint64(f.cfg.GroupID))
	w.Uvarint(f.applied.Load())
	w.Bytes(eng)
	f.dedup.encode(&w)
	w.String(f.shard)
	w.Uvarint(f.flushed)
	f.outbox.encode(&w)
	return w.Buf, nil
}

// Snapshot implements raft.FSM. It only captures: the state is encoded under the read lock
// (Apply waits meanwhile); Persist writes it out.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	body, err := f.State()
	if err != nil {
		return nil, err
	}
	if f.cfg.OnSnapshot != nil {
		f.cfg.OnSnapshot()
	}
	return &snapshot{body: body}, nil
}

type snapshot struct {
	body []byte
}

// Persist implements raft.FSMSnapshot: header, body, checksum. On error it cancels the sink.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(sink, s.body); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *snapshot) Release() { s.body = nil }

func writeSnapshot(w io.Writer, body []byte) error {
	hdr := make([]byte, 0, len(SnapshotMagic)+1)
	hdr = append(hdr, SnapshotMagic...)
	hdr = append(hdr, SnapshotVersion)
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	_, err := w.Write(binary.LittleEndian.AppendUint32(nil, crc32.Checksum(body, crcTable)))
	return err
}

// Restore implements raft.FSM: it replaces the whole state with the snapshot's. A snapshot
// that cannot be read or decoded returns an error wrapping ErrBadSnapshot and leaves the FSM
// unchanged. It closes rc.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("%w: read: %w", ErrBadSnapshot, err)
	}
	body, version, err := snapshotBody(data)
	if err != nil {
		return err
	}
	st, err := f.decodeState(body, version)
	if err != nil {
		return err
	}
	eng, dd, applied := st.eng, st.dedup, st.applied
	markFlushed(eng, st.flushed)
	f.mu.Lock()
	f.eng, f.dedup, f.shard, f.flushed, f.outbox = eng, dd, st.shard, st.flushed, st.outbox
	f.publishLocked()
	f.notifyLocked()
	f.applied.Store(applied)
	f.stats.Restores++
	f.mu.Unlock()
	f.log.Info("restored snapshot", "applied_index", applied, "bytes", len(data), "producers", dd.Len())
	return nil
}

// snapshotBody checks a snapshot file's header and checksum and returns its body and
// version.
func snapshotBody(data []byte) ([]byte, byte, error) {
	const hdr = len(SnapshotMagic) + 1
	if len(data) < hdr+4 {
		return nil, 0, fmt.Errorf("%w: %d bytes is too short", ErrBadSnapshot, len(data))
	}
	if !bytes.Equal(data[:len(SnapshotMagic)], []byte(SnapshotMagic)) {
		return nil, 0, fmt.Errorf("%w: no %s header", ErrBadSnapshot, SnapshotMagic)
	}
	v := data[len(SnapshotMagic)]
	if v != 1 && v != SnapshotVersion {
		return nil, 0, fmt.Errorf("%w: version %d, want 1 to %d", ErrBadSnapshot, v, SnapshotVersion)
	}
	body := data[hdr : len(data)-4]
	if got, want := crc32.Checksum(body, crcTable), binary.LittleEndian.Uint32(data[len(data)-4:]); got != want {
		return nil, 0, fmt.Errorf("%w: checksum %08x, want %08x", ErrBadSnapshot, got, want)
	}
	return body, v, nil
}

// decoded is a state body read back.
type decoded struct {
	eng     *engine.Engine
	dedup   *dedup
	applied uint64
	shard   string
	flushed uint64
	outbox  *outbox
}

// decodeState decodes a body of snapshot version version, written by stateLocked, into
// fresh structures; f is not touched.
func (f *FSM) decodeState(body []byte, version byte) (decoded, error) {
	r := wire.NewReader(body)
	group := r.Uvarint()
	applied := r.Uvarint()
	engBytes := r.Bytes()
	if err := r.Err(); err != nil {
		return decoded{}, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	if group != uint64(f.cfg.GroupID) {
		return decoded{}, fmt.Errorf("%w: it is of group %d, this FSM is group %d", ErrBadSnapshot, group, f.cfg.GroupID)
	}
	eng, err := engine.New(engine.Config{AggTimeZone: f.cfg.AggTimeZone, GeoIP: f.cfg.GeoIP})
	if err != nil {
		return decoded{}, fmt.Errorf("fsm: %w", err)
	}
	if err := eng.UnmarshalBinary(engBytes); err != nil {
		return decoded{}, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	dd, err := decodeDedup(r, f.cfg.MaxProducers, f.cfg.ProducerTTL, version, eng.Now())
	if err != nil {
		return decoded{}, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	shard := r.String()
	flushed := r.Uvarint()
	if err := r.Err(); err != nil {
		return decoded{}, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	ob, err := decodeOutbox(r, f.cfg.RetainForSubscribers)
	if err != nil {
		return decoded{}, fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	if n := r.Len(); n != 0 {
		return decoded{}, fmt.Errorf("%w: %d trailing bytes", ErrBadSnapshot, n)
	}
	return decoded{eng: eng, dedup: dd, applied: applied, shard: shard, flushed: flushed, outbox: ob}, nil
}

// markFlushed tells every aggregation of a restored engine the group's flushed index, from
// which it counts its flush backlog (agg.State.Unflushed). It changes no state.
func markFlushed(e *engine.Engine, index uint64) {
	for _, a := range e.Apps() {
		for _, def := range a.Aggregations() {
			if st, ok := a.Aggregation(def.Name); ok {
				st.MarkFlushed(index)
			}
		}
	}
}
