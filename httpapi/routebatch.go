package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/raftnode"
)

// Batched forwarding. A node does not send each part it forwards to a group's leader on its
// own: parts that arrive while earlier batches are on their way go together in one
// POST /v1/internal/ingest?group=g, and the leader proposes them in one Ingest call (one
// entry). The parts travel decoded, in the Raft command codec, so the leader never decodes
// JSON for them, and the answer is one typed result per part (partResult), never an HTTP
// body: only the node that took the client's request renders HTTP.
//
// Format (internal/wire), request: byte 0 (no batch of the older format starts with 0),
// byte fwdFormat, bytes command (a KindBatch fsm.Command with the batch's decoded parts, in
// order), u count, then per entry: byte flags (fwdUser, fwdRaw, fwdSplit), string user when
// fwdUser, and for an fwdRaw entry string stream, string producer ID (already scoped to the
// user), u seq, bytes body; an entry without fwdRaw takes the command's next part. A raw
// entry is a request its node could not decode (it has no schema for the stream): the
// receiver decodes it, and routes it over the groups when fwdSplit is set. Answer (200
// only): u count, then per entry u results, then per result u group, byte code, u index,
// u events, byte flags (1 duplicate, 2 whole request), string message, varint event (-1:
// none), string field. Any other answer means the batch was not taken.

const (
	// fwdFormat is the version of the batch format.
	fwdFormat = 1
	// forwardBatchInFlight bounds the batches a node has on their way to one group's
	// leader; parts arriving meanwhile wait and go in the next batch.
	forwardBatchInFlight = 2
	// forwardBatchMax bounds the entries of one batch.
	forwardBatchMax = 1024
	// forwardBatchOverhead is what the batch format may add to the bodies' bytes.
	forwardBatchOverhead = 1 << 20
)

// Flags of a forwarded entry.
const (
	fwdUser  byte = 1
	fwdRaw   byte = 2
	fwdSplit byte = 4
)

// fwdEntry is one part, or one undecoded request, on its way to a group's leader.
type fwdEntry struct {
	part  *fsm.Part   // decoded
	raw   *rawRequest // or not
	split bool        // raw: the receiver splits it over the groups
	// user is the user the request acts for ("" with users off).
	user string
	done chan []partResult // buffered: the sender never blocks
}

// size is the entry's bytes, roughly, for bounding a batch.
func (e *fwdEntry) size() int {
	n := 16 + len(e.user)
	if e.raw != nil {
		return n + len(e.raw.stream) + len(e.raw.producerID) + len(e.raw.body)
	}
	n += len(e.part.Stream) + len(e.part.ProducerID)
	for _, ev := range e.part.Events {
		n += 2 + 10*len(ev)
	}
	return n
}

func (e *fwdEntry) stream() string {
	if e.raw != nil {
		return e.raw.stream
	}
	return e.part.Stream
}

// forwarder batches the entries forwarded to one group's leader.
type forwarder struct {
	in *ingester
	g  int

	mu       sync.Mutex
	queue    []*fwdEntry
	inFlight int // senders running
	// The leader's addresses, cached until a request to it fails or it answers that it
	// does not lead the group; stale then asks the group's voters afresh.
	leaderRaft, leaderHTTP string
	stale                  bool
}

// submit queues e and starts a sender unless enough are running. It returns e.
func (f *forwarder) submit(e *fwdEntry) *fwdEntry {
	e.done = make(chan []partResult, 1)
	f.mu.Lock()
	f.queue = append(f.queue, e)
	start := f.inFlight < forwardBatchInFlight
	if start {
		f.inFlight++
	}
	f.mu.Unlock()
	if start {
		go f.run()
	}
	return e
}

// run sends batches until the queue is empty.
func (f *forwarder) run() {
	for {
		batch := f.take()
		if batch == nil {
			return
		}
		f.send(batch)
	}
}

// take removes the next batch from the queue: at most forwardBatchMax entries and, past the
// first, MaxBodyBytes. It returns nil (and counts the sender out) when the queue is empty.
func (f *forwarder) take() []*fwdEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queue) == 0 {
		f.inFlight--
		return nil
	}
	n, size := 1, f.queue[0].size()
	for n < len(f.queue) && n < forwardBatchMax && int64(size+f.queue[n].size()) <= f.in.s.cfg.MaxBodyBytes {
		size += f.queue[n].size()
		n++
	}
	batch := make([]*fwdEntry, n)
	copy(batch, f.queue)
	clear(f.queue[:n])
	f.queue = f.queue[n:]
	if len(f.queue) == 0 {
		f.queue = nil // let the array go
	}
	return batch
}

// send posts one batch to the leader and hands every entry its results.
func (f *forwarder) send(batch []*fwdEntry) {
	ctx, cancel := context.WithTimeout(context.Background(), f.in.s.cfg.ForwardTimeout)
	defer cancel()
	res, err := f.exchange(ctx, batch)
	for i, e := range batch {
		if err != nil {
			pr := failed(f.g, codeUnavailable, err.Error())
			pr.whole = e.raw != nil
			e.done <- []partResult{pr}
			continue
		}
		e.done <- res[i]
	}
}

// leader is the HTTP and Raft address of the group's leader: cached, else looked up.
func (f *forwarder) leader(ctx context.Context) (httpAddr, raftAddr string, err error) {
	f.mu.Lock()
	httpAddr, raftAddr, stale := f.leaderHTTP, f.leaderRaft, f.stale
	f.mu.Unlock()
	if httpAddr != "" {
		return httpAddr, raftAddr, nil
	}
	grp := f.in.groups[f.g]
	raftAddr = grp.Status().LeaderRaft
	if lf, ok := grp.(leaderFinder); ok && (raftAddr == "" || stale) {
		// A group this node holds no replica of learns its leader from the group's voters.
		if _, addr := lf.FindLeader(ctx); addr != "" {
			raftAddr = addr
		}
	}
	if raftAddr == "" {
		return "", "", errNoLeaderAddr
	}
	httpAddr, err = f.in.s.res.HTTPAddr(ctx, raftAddr)
	if err != nil {
		return "", "", fmt.Errorf("cannot reach the leader of group %d: %w", f.g, err)
	}
	f.mu.Lock()
	f.leaderHTTP, f.leaderRaft, f.stale = httpAddr, raftAddr, false
	f.mu.Unlock()
	return httpAddr, raftAddr, nil
}

// forget drops the cached leader: the next batch looks it up afresh.
func (f *forwarder) forget() {
	f.mu.Lock()
	f.leaderHTTP, f.leaderRaft, f.stale = "", "", true
	f.mu.Unlock()
}

// exchange sends a batch to the leader and decodes its results.
func (f *forwarder) exchange(ctx context.Context, batch []*fwdEntry) ([][]partResult, error) {
	data, err := encodeForwarded(batch)
	if err != nil {
		return nil, fmt.Errorf("encode the parts forwarded to group %d: %w", f.g, err)
	}
	httpAddr, raftAddr, err := f.leader(ctx)
	if err != nil {
		return nil, err
	}
	target := f.in.s.scheme + "://" + httpAddr + "/v1/internal/ingest?group=" + strconv.Itoa(f.g)
	resp, err := f.in.s.send(ctx, http.MethodPost, target, http.Header{"Content-Type": {"application/octet-stream"}}, data)
	if err != nil {
		f.forget()
		if fg, ok := f.in.s.res.(forgetter); ok {
			fg.Forget(raftAddr)
		}
		// The leader may have applied the batch before the connection broke.
		return nil, fmt.Errorf("forwarding to the leader of group %d failed: %w; retry with the same Producer-Id and Producer-Seq", f.g, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		f.forget()
		return nil, fmt.Errorf("the leader of group %d refused the forwarded parts (%d %s); retry with the same Producer-Id and Producer-Seq", f.g, resp.StatusCode, b)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read the answer of the leader of group %d: %w; retry with the same Producer-Id and Producer-Seq", f.g, err)
	}
	res, err := decodeResults(b, len(batch))
	if err != nil {
		return nil, fmt.Errorf("the leader of group %d answered a malformed batch: %w; retry with the same Producer-Id and Producer-Seq", f.g, err)
	}
	for _, r := range res {
		if notLeader(r) {
			f.forget()
			break
		}
	}
	return res, nil
}

// encodeForwarded encodes a batch (see the format above).
func encodeForwarded(batch []*fwdEntry) ([]byte, error) {
	cmd := fsm.Command{Kind: fsm.KindBatch}
	size := 32
	for _, e := range batch {
		if e.part != nil {
			cmd.Parts = append(cmd.Parts, *e.part)
		}
		size += 8 + e.size()
	}
	part, err := cmd.MarshalBinary()
	if err != nil {
		return nil, err
	}
	wr := wire.Writer{Buf: make([]byte, 0, size+len(part))}
	wr.Byte(0)
	wr.Byte(fwdFormat)
	wr.Bytes(part)
	wr.Uvarint(uint64(len(batch)))
	for _, e := range batch {
		var flags byte
		if e.user != "" {
			flags |= fwdUser
		}
		if e.raw != nil {
			flags |= fwdRaw
			if e.split {
				flags |= fwdSplit
			}
		}
		wr.Byte(flags)
		if e.user != "" {
			wr.String(e.user)
		}
		if e.raw != nil {
			wr.String(e.raw.stream)
			wr.String(e.raw.producerID)
			wr.Uvarint(e.raw.seq)
			wr.Bytes(e.raw.body)
		}
	}
	return wr.Buf, nil
}

// decodeForwarded reads a batch; every error names what is wrong with it.
func decodeForwarded(data []byte) ([]*fwdEntry, error) {
	rd := wire.NewReader(data)
	if m, v := rd.Byte(), rd.Byte(); rd.Err() == nil && (m != 0 || v != fwdFormat) {
		return nil, fmt.Errorf("batch format %d.%d, want 0.%d", m, v, fwdFormat)
	}
	var cmd fsm.Command
	if b := rd.Bytes(); rd.Err() == nil {
		if err := cmd.UnmarshalBinary(b); err != nil || cmd.Kind != fsm.KindBatch {
			return nil, fmt.Errorf("the parts are not a batch command (%v): %w", cmd.Kind, err)
		}
	}
	n := rd.Count(1)
	if n > forwardBatchMax {
		return nil, fmt.Errorf("%d entries, over the %d a batch may hold", n, forwardBatchMax)
	}
	entries := make([]*fwdEntry, 0, n)
	parts := cmd.Parts
	for i := 0; i < n && rd.Err() == nil; i++ {
		e := &fwdEntry{}
		flags := rd.Byte()
		if flags&^(fwdUser|fwdRaw|fwdSplit) != 0 || (flags&fwdSplit != 0 && flags&fwdRaw == 0) {
			rd.Fail(fmt.Errorf("entry %d has unknown flags %#x", i, flags))
			break
		}
		if flags&fwdUser != 0 {
			if e.user = rd.String(); rd.Err() == nil && e.user == "" {
				rd.Fail(fmt.Errorf("entry %d names an empty user", i))
			}
		}
		if flags&fwdRaw != 0 {
			e.raw = &rawRequest{stream: rd.String(), producerID: rd.String(), seq: rd.Uvarint(), body: rd.Bytes()}
			e.split = flags&fwdSplit != 0
		} else {
			if len(parts) == 0 {
				rd.Fail(fmt.Errorf("entry %d: the command has too few parts", i))
				break
			}
			e.part, parts = &parts[0], parts[1:]
		}
		entries = append(entries, e)
	}
	if rd.Err() == nil && len(parts) != 0 {
		rd.Fail(fmt.Errorf("the command has %d parts more than entries", len(parts)))
	}
	if rd.Err() == nil && rd.Len() != 0 {
		rd.Fail(fmt.Errorf("%d trailing bytes", rd.Len()))
	}
	if err := rd.Err(); err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, errors.New("no entries")
	}
	return entries, nil
}

// encodeResults encodes every entry's results (see the format above).
func encodeResults(res [][]partResult) []byte {
	size := 8
	for _, r := range res {
		size += 4 + 40*len(r)
		for _, p := range r {
			size += len(p.msg) + len(p.field)
		}
	}
	wr := wire.Writer{Buf: make([]byte, 0, size)}
	wr.Uvarint(uint64(len(res)))
	for _, r := range res {
		wr.Uvarint(uint64(len(r)))
		for _, p := range r {
			wr.Uvarint(uint64(p.group))
			wr.Byte(byte(p.code))
			wr.Uvarint(p.index)
			wr.Uvarint(uint64(p.events))
			var flags byte
			if p.duplicate {
				flags |= 1
			}
			if p.whole {
				flags |= 2
			}
			wr.Byte(flags)
			wr.String(p.msg)
			wr.Varint(int64(p.event))
			wr.String(p.field)
		}
	}
	return wr.Buf
}

// decodeResults reads the results of a batch of n entries.
func decodeResults(b []byte, n int) ([][]partResult, error) {
	rd := wire.NewReader(b)
	if m := rd.Count(2); rd.Err() == nil && m != n {
		return nil, fmt.Errorf("%d answers for %d entries", m, n)
	}
	res := make([][]partResult, n)
	for i := 0; i < n && rd.Err() == nil; i++ {
		m := rd.Count(8)
		if rd.Err() == nil && m == 0 {
			rd.Fail(fmt.Errorf("entry %d has no result", i))
		}
		res[i] = make([]partResult, m)
		for j := range res[i] {
			p := &res[i][j]
			p.group = uint32(rd.Uvarint())
			p.code = code(rd.Byte())
			p.index, p.events = rd.Uvarint(), int(rd.Uvarint())
			flags := rd.Byte()
			p.duplicate, p.whole = flags&1 != 0, flags&2 != 0
			p.msg, p.event, p.field = rd.String(), int(rd.Varint()), rd.String()
			if p.code >= numCodes {
				// A newer node's code: what it means is unknown here.
				p.code = codeInternal
			}
		}
	}
	if rd.Err() == nil && rd.Len() != 0 {
		rd.Fail(fmt.Errorf("%d trailing bytes", rd.Len()))
	}
	if err := rd.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// handleInternalIngest takes a batch of parts forwarded to this node as the leader of the
// group (see the format above) and answers every entry's results.
func (s *Server) handleInternalIngest(w http.ResponseWriter, r *http.Request) {
	g, present, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	if !present {
		writeError(w, http.StatusBadRequest, "a forwarded batch names its group")
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes+forwardBatchOverhead))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "read forwarded batch: "+err.Error())
		return
	}
	entries, err := decodeForwarded(data)
	if err != nil {
		writeError(w, http.StatusBadRequest, "malformed forwarded batch: "+err.Error())
		return
	}
	res := s.ing.take(r.Context(), g, entries)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(encodeResults(res))
}

// take commits the entries of a batch forwarded to this node for group g: the decoded parts
// together in one Ingest call when this node leads g, each raw request as this node would
// take it from a client (it is never forwarded undecoded again).
func (in *ingester) take(ctx context.Context, g int, entries []*fwdEntry) [][]partResult {
	out := make([][]partResult, len(entries))
	grp := in.groups[g]
	leads := grp.IsLeader()
	var wg sync.WaitGroup
	var parts []fsm.Part
	var of []int // the entry of each part
	streams := map[string]bool{}
	for i, e := range entries {
		if users := in.s.cfg.Users; users != nil && e.user != "" && !users.Allowed(e.user, permWrite) {
			pr := failed(g, codeForbidden, fmt.Sprintf("user %q may not ingest into stream %q: that needs the %q permission", e.user, e.stream(), permWrite))
			pr.whole = e.raw != nil
			out[i] = []partResult{pr}
			continue
		}
		if e.raw != nil {
			wg.Go(func() { out[i] = in.request(ctx, g, e.split, *e.raw, e.user, false) })
			continue
		}
		if !leads {
			out[i] = []partResult{errResult(g, raftnode.ErrNotLeader)}
			continue
		}
		parts = append(parts, *e.part)
		of = append(of, i)
		streams[e.part.Stream] = false
	}
	if len(parts) > 0 {
		in.commit(ctx, g, parts, of, streams, out)
	}
	wg.Wait()
	return out
}

// commit proposes the decoded parts of a forwarded batch in one Ingest call and records each
// one's result in out[of[j]]. A stream the group does not define is refused before.
func (in *ingester) commit(ctx context.Context, g int, parts []fsm.Part, of []int, streams map[string]bool, out [][]partResult) {
	grp := in.groups[g]
	if cat := catalogOf(grp); cat != nil {
		for name := range streams {
			_, streams[name] = cat.StreamDef(name)
		}
	} else if err := grp.Read(ctx, raftnode.Stale, 0, func(e fsm.View) {
		for name := range streams {
			_, streams[name] = e.Stream(name)
		}
	}); err != nil {
		for _, i := range of {
			out[i] = []partResult{errResult(g, err)}
		}
		return
	}
	known, knownOf := parts, of
	if slices.ContainsFunc(parts, func(p fsm.Part) bool { return !streams[p.Stream] }) {
		known, knownOf = nil, nil
		for j := range parts {
			if streams[parts[j].Stream] {
				known, knownOf = append(known, parts[j]), append(knownOf, of[j])
				continue
			}
			pr := unknownStream(g, parts[j].Stream)
			pr.whole = false
			out[of[j]] = []partResult{pr}
		}
	}
	if len(known) == 0 {
		return
	}
	res, err := grp.Ingest(ctx, known)
	for j, i := range knownOf {
		if err != nil {
			out[i] = []partResult{errResult(g, err)}
			continue
		}
		out[i] = []partResult{appliedResult(g, res.Index, len(known[j].Events), res.Parts[j])}
	}
}

// forwardPause is how long a part waits before it is sent again to a leader looked up anew.
const forwardPause = 20 * time.Millisecond
