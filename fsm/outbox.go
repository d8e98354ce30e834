package fsm

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// Outbox defaults.
const (
	// DefaultRetainForSubscribers is Config.RetainForSubscribers' default.
	DefaultRetainForSubscribers = 10_000
	// DefaultMaxUndelivered is Config.MaxUndelivered's default.
	DefaultMaxUndelivered = 100_000
)

// ErrSinkBacklog is wrapped by a part's CheckBatch error when the part's stream feeds a sink
// that has MaxUndelivered outputs waiting: the input is refused (503) rather than anything
// dropped. The error is a *SinkBacklogError.
var ErrSinkBacklog = errors.New("fsm: sink backlog full")

// SinkBacklogError names the stuck sink.
type SinkBacklogError struct {
	Sink        engine.Sink
	Input       string // the stream the refused part was sent to
	Undelivered int
	Bound       int
}

func (e *SinkBacklogError) Error() string {
	return fmt.Sprintf("fsm: %s has %d undelivered outputs (bound %d): stream %s, which feeds it, accepts no input until the sink catches up",
		e.Sink, e.Undelivered, e.Bound, e.Input)
}

// Is makes errors.Is(err, ErrSinkBacklog) hold.
func (e *SinkBacklogError) Is(target error) bool { return target == ErrSinkBacklog }

// OutPos is an output's position in its group's log: the log index of the entry that
// caused it and its number (engine.Output.Seq) among that entry's outputs. With the group ID
// it is the output's stable ID, the same on every replica and in every retry.
type OutPos struct {
	Index uint64
	Seq   uint64
}

// Less orders positions as the log does.
func (p OutPos) Less(q OutPos) bool {
	return p.Index < q.Index || (p.Index == q.Index && p.Seq < q.Seq)
}

// ID is the output ID "GROUP-INDEX-SEQ" (decimal).
func (p OutPos) ID(group uint32) string {
	return strconv.FormatUint(uint64(group), 10) + "-" + strconv.FormatUint(p.Index, 10) + "-" + strconv.FormatUint(p.Seq, 10)
}

// ParseOutputID reads an ID written by OutPos.ID.
func ParseOutputID(id string) (group uint32, p OutPos, err error) {
	f := strings.Split(id, "-")
	if len(f) != 3 {
		return 0, OutPos{}, fmt.Errorf("output ID %q is not GROUP-INDEX-SEQ", id)
	}
	g, err1 := strconv.ParseUint(f[0], 10, 32)
	i, err2 := strconv.ParseUint(f[1], 10, 64)
	s, err3 := strconv.ParseUint(f[2], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, OutPos{}, fmt.Errorf("output ID %q is not GROUP-INDEX-SEQ: %w", id, err)
	}
	return uint32(g), OutPos{Index: i, Seq: s}, nil
}

// OutEntry is one query output kept in the outbox.
//
// Apply keeps the output's row and its stream's attributes; the JSON object is rendered
// only when a sink or subscriber reads the entry (OutputsAfter) or a snapshot encodes it.
// The engine never modifies a row once it is output, so rendering later gives the bytes
// rendering at apply time would have.
type OutEntry struct {
	Pos     OutPos
	App     string
	Expired bool
	lazy    bool // Data is not rendered yet: attrs and row hold the output
	Time    int64
	// Data is the output's attributes as a JSON object. OutputsAfter always fills it; in
	// the outbox it is nil while the row is kept instead (it is set for entries read from
	// a snapshot, which holds the rendered bytes).
	Data []byte

	attrs []siddhiql.Attribute // the output stream's attributes, shared with the engine
	row   expr.Row             // the output's values, never modified once output
}

// appendData appends the output's attributes as a JSON object.
func (e *OutEntry) appendData(dst []byte) []byte {
	if !e.lazy {
		return append(dst, e.Data...)
	}
	return expr.AppendJSONObject(dst, e.attrs, e.row)
}

// AppendJSON appends the entry as sinks and subscribers receive it:
// {"id":"G-INDEX-SEQ","stream":"S","app":"A","ts":MS,"expired":false,"data":{...}}.
func (e *OutEntry) AppendJSON(dst []byte, group uint32, stream string) []byte {
	dst = append(dst, `{"id":"`...)
	dst = append(dst, e.Pos.ID(group)...)
	dst = append(dst, `","stream":`...)
	dst = expr.String(stream).AppendJSON(dst)
	dst = append(dst, `,"app":`...)
	dst = expr.String(e.App).AppendJSON(dst)
	dst = append(dst, `,"ts":`...)
	dst = strconv.AppendInt(dst, e.Time, 10)
	dst = append(dst, `,"expired":`...)
	dst = strconv.AppendBool(dst, e.Expired)
	dst = append(dst, `,"data":`...)
	dst = e.appendData(dst)
	return append(dst, '}')
}

// outStream is one stream's outbox.
type outStream struct {
	// entries are in log order. Entries delivered by every sink are trimmed from the front,
	// keeping the last retain of them for subscribers.
	entries []OutEntry
	// trimmed is the position of the last entry trimmed (zero: none): a subscriber asking
	// for outputs after an earlier position has missed some.
	trimmed OutPos
	// sinks is each sink's delivered position (through which outputs are delivered),
	// indexed by the sink's position on the stream.
	sinks []OutPos
}

// last is the position of the newest entry ever kept (trimmed ones included).
func (s *outStream) last() OutPos {
	if n := len(s.entries); n > 0 {
		return s.entries[n-1].Pos
	}
	return s.trimmed
}

// upTo is the number of entries at or before p.
func (s *outStream) upTo(p OutPos) int {
	return sort.Search(len(s.entries), func(i int) bool { return p.Less(s.entries[i].Pos) })
}

// trim drops entries every sink delivered, keeping the newest retain entries.
func (s *outStream) trim(retain int) {
	delivered := len(s.entries)
	for _, p := range s.sinks {
		delivered = min(delivered, s.upTo(p))
	}
	drop := min(delivered, max(0, len(s.entries)-retain))
	if drop == 0 {
		return
	}
	s.trimmed = s.entries[drop-1].Pos
	clear(s.entries[:drop]) // release the data; the array is reallocated by a later append
	s.entries = s.entries[drop:]
}

// outbox is the replicated outbox: every query output, per output stream, until every sink
// of the stream delivered it (and RetainForSubscribers more for replay).
type outbox struct {
	retain  int
	streams map[string]*outStream
}

func newOutbox(retain int) *outbox { return &outbox{retain: retain, streams: map[string]*outStream{}} }

// add appends the outputs of the entry at index (their Seq already numbered).
func (o *outbox) add(index uint64, outs []engine.Output) {
	if len(outs) == 0 {
		return
	}
	var touched []*outStream // few: an entry's outputs go to one stream or a handful
	for i := range outs {
		out := &outs[i]
		s := o.streams[out.Stream]
		if s == nil {
			s = &outStream{}
			o.streams[out.Stream] = s
		}
		if !slices.Contains(touched, s) {
			touched = append(touched, s)
			s.reserve(countStream(outs[i:], out.Stream))
		}
		s.entries = append(s.entries, OutEntry{Pos: OutPos{Index: index, Seq: uint64(out.Seq)}, App: out.App,
			Expired: out.Expired, Time: out.Time, lazy: true, attrs: out.Attrs, row: out.Row})
	}
	for _, s := range touched {
		s.trim(o.retain)
	}
}

// countStream counts the outputs to stream.
func countStream(outs []engine.Output, stream string) int {
	n := 0
	for i := range outs {
		if outs[i].Stream == stream {
			n++
		}
	}
	return n
}

// reserve makes room for n more entries. Trimming moves the front of entries forward, so
// the array's capacity runs out every few entries when a stream keeps thousands; a new
// array twice the live length keeps the copying to about one per entry added.
func (s *outStream) reserve(n int) {
	if cap(s.entries)-len(s.entries) >= n {
		return
	}
	grown := make([]OutEntry, len(s.entries), 2*(len(s.entries)+n))
	copy(grown, s.entries)
	s.entries = grown
}

// reconcile follows a deploy or undeploy: outboxes of streams no query writes any more go;
// every stream gets one position per declared sink. A new sink starts after the outputs
// already in the outbox; a sink that went away forgets its position.
func (o *outbox) reconcile(e *engine.Engine) {
	for _, name := range slices.Sorted(maps.Keys(o.streams)) {
		if !e.IsOutputStream(name) {
			delete(o.streams, name)
		}
	}
	count := map[string]int{}
	for _, sk := range e.Sinks() {
		count[sk.Stream]++
	}
	for name := range count {
		if o.streams[name] == nil {
			o.streams[name] = &outStream{}
		}
	}
	for name, s := range o.streams {
		n := count[name]
		for len(s.sinks) < n {
			s.sinks = append(s.sinks, s.last())
		}
		s.sinks = s.sinks[:n]
		s.trim(o.retain)
	}
}

// delivered moves a sink's position forward (never back) and trims.
func (o *outbox) delivered(stream string, sink uint32, through OutPos) error {
	s := o.streams[stream]
	if s == nil || int(sink) >= len(s.sinks) {
		return fmt.Errorf("fsm: delivered: stream %s has no sink %d", stream, sink)
	}
	if s.sinks[sink].Less(through) {
		s.sinks[sink] = through
	}
	s.trim(o.retain)
	return nil
}

// encode writes the outbox sorted by stream name. Each entry's data is written rendered, as
// it always was, so snapshots keep their format.
func (o *outbox) encode(w *wire.Writer) {
	var data []byte
	names := slices.Sorted(maps.Keys(o.streams))
	w.Uvarint(uint64(len(names)))
	for _, name := range names {
		s := o.streams[name]
		w.String(name)
		w.Uvarint(s.trimmed.Index)
		w.Uvarint(s.trimmed.Seq)
		w.Uvarint(uint64(len(s.sinks)))
		for _, p := range s.sinks {
			w.Uvarint(p.Index)
			w.Uvarint(p.Seq)
		}
		w.Uvarint(uint64(len(s.entries)))
		for i := range s.entries {
			e := &s.entries[i]
			w.Uvarint(e.Pos.Index)
			w.Uvarint(e.Pos.Seq)
			w.String(e.App)
			w.Bool(e.Expired)
			w.Varint(e.Time)
			data = e.appendData(data[:0])
			w.Bytes(data)
		}
	}
}

// decodeOutbox reads what encode wrote; an empty reader (a snapshot written before outboxes
// existed) is an empty outbox.
func decodeOutbox(r *wire.Reader, retain int) (*outbox, error) {
	o := newOutbox(retain)
	if r.Len() == 0 {
		return o, nil
	}
	n := r.Count(4)
	for range n {
		name := r.String()
		s := &outStream{trimmed: OutPos{Index: r.Uvarint(), Seq: r.Uvarint()}}
		ns := r.Count(2)
		if ns > 0 {
			s.sinks = make([]OutPos, ns)
			for i := range s.sinks {
				s.sinks[i] = OutPos{Index: r.Uvarint(), Seq: r.Uvarint()}
			}
		}
		ne := r.Count(6)
		if ne > 0 {
			s.entries = make([]OutEntry, ne)
			for i := range s.entries {
				e := &s.entries[i]
				e.Pos = OutPos{Index: r.Uvarint(), Seq: r.Uvarint()}
				e.App = r.String()
				e.Expired = r.Bool()
				e.Time = r.Varint()
				e.Data = slices.Clone(r.Bytes())
			}
		}
		if err := r.Err(); err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		if _, dup := o.streams[name]; dup {
			return nil, fmt.Errorf("outbox: stream %s twice", name)
		}
		o.streams[name] = s
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return o, nil
}

// SinkState is a sink with its replicated delivery position.
type SinkState struct {
	engine.Sink
	// Delivered is the position through which the sink's outputs are delivered.
	Delivered OutPos
	// Undelivered counts the outputs after Delivered.
	Undelivered int
}

// Sinks lists every deployed sink with its position, as engine.Engine.Sinks orders them.
func (f *FSM) Sinks() []SinkState {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []SinkState
	for _, sk := range f.eng.Sinks() {
		st := SinkState{Sink: sk}
		if s := f.outbox.streams[sk.Stream]; s != nil && sk.Index < len(s.sinks) {
			st.Delivered = s.sinks[sk.Index]
			st.Undelivered = len(s.entries) - s.upTo(st.Delivered)
		}
		out = append(out, st)
	}
	return out
}

// ErrOutputsGone: the outputs after the requested position were trimmed from the outbox.
var ErrOutputsGone = errors.New("fsm: outputs no longer retained")

// OutputsAfter returns up to limit outputs of stream after position after, in log order,
// each with its Data rendered. It fails with ErrOutputsGone when outputs after `after` were
// already trimmed. The entries returned must not be modified.
func (f *FSM) OutputsAfter(stream string, after OutPos, limit int) ([]OutEntry, error) {
	es, err := f.outputsAfter(stream, after, limit)
	if err != nil || len(es) == 0 {
		return nil, err
	}
	// Render outside the lock (the rows never change): the entries share one buffer.
	var size int
	for i := range es {
		if es[i].lazy {
			size += 16 + 24*len(es[i].row)
		}
	}
	buf := make([]byte, 0, size)
	for i := range es {
		e := &es[i]
		if !e.lazy {
			continue
		}
		start := len(buf)
		buf = e.appendData(buf)
		e.Data = buf[start:len(buf):len(buf)]
		e.lazy, e.attrs, e.row = false, nil, nil
	}
	return es, nil
}

// outputsAfter copies the entries OutputsAfter returns, under the read lock.
func (f *FSM) outputsAfter(stream string, after OutPos, limit int) ([]OutEntry, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s := f.outbox.streams[stream]
	if s == nil {
		return nil, nil
	}
	if after.Less(s.trimmed) {
		return nil, fmt.Errorf("%w: stream %s keeps outputs after %d-%d only (asked for after %d-%d)",
			ErrOutputsGone, stream, s.trimmed.Index, s.trimmed.Seq, after.Index, after.Seq)
	}
	i := s.upTo(after)
	j := min(len(s.entries), i+limit)
	return slices.Clone(s.entries[i:j]), nil
}

// OutputBounds is the position of the last trimmed output of stream (outputs after it are
// retained) and of its newest output.
func (f *FSM) OutputBounds(stream string) (trimmed, last OutPos) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if s := f.outbox.streams[stream]; s != nil {
		return s.trimmed, s.last()
	}
	return OutPos{}, OutPos{}
}

// OutputsChanged returns a channel closed when outputs are next added to the outbox (or a
// snapshot is restored): wait on it, then read again.
func (f *FSM) OutputsChanged() <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.notify
}

// notifyLocked wakes everyone waiting on OutputsChanged. f.mu must be held for writing.
func (f *FSM) notifyLocked() {
	close(f.notify)
	f.notify = make(chan struct{})
}

// sinkBacklogLocked returns, per stream, the first sink over MaxUndelivered (nil: none).
func (f *FSM) sinkBacklogLocked() map[string]*SinkBacklogError {
	var over map[string]*SinkBacklogError
	for name, s := range f.outbox.streams {
		for i, p := range s.sinks {
			n := len(s.entries) - s.upTo(p)
			if n < f.cfg.MaxUndelivered {
				continue
			}
			if over == nil {
				over = map[string]*SinkBacklogError{}
			}
			if _, seen := over[name]; seen {
				break
			}
			sk := engine.Sink{Stream: name, Index: i}
			if sinks := f.eng.SinksOf(name); i < len(sinks) {
				sk = sinks[i]
			}
			over[name] = &SinkBacklogError{Sink: sk, Undelivered: n, Bound: f.cfg.MaxUndelivered}
		}
	}
	return over
}

// SinkPosition is the replicated delivered position of sink index of stream; ok is false
// when the stream has no such sink.
func (f *FSM) SinkPosition(stream string, index int) (p OutPos, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s := f.outbox.streams[stream]
	if s == nil || index >= len(s.sinks) {
		return OutPos{}, false
	}
	return s.sinks[index], true
}
