package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/siddhiql"
)

// Batched forwarding of ingest requests. A follower does not pass each client's ingest
// request to the leader on its own: requests that arrive while earlier ones are on their
// way are sent together in one POST /v1/internal/ingest, each with its stream, producer
// headers and body bytes as received. The leader takes each one exactly as it takes a
// forwarded request (same checks, same errors), proposes the good ones together in one
// Ingest call (one entry, acknowledged once it is committed and applied), and answers every
// request's status and body, which the follower relays unchanged. So the client sees what
// it would have seen with one forward per request, for one HTTP exchange per batch between
// the nodes instead of one per request.
//
// A node that split a request over several groups sends each other group's part the same
// way, already decoded: its rows in the Raft command codec (a KindBatch fsm.Command of that
// one part), which the leader checks against its schema without decoding JSON again.
//
// Format (internal/wire), request: u count, then per request a kind byte and: kind 0 (a
// request as received): string stream, string Producer-Id, string Producer-Seq (the header
// values as received), bytes body; kind 1 (a decoded part): bytes command; kinds 2 and 3
// (acting for a user): string user, then as kind 0 and 1. Kinds 2 and 3 are sent only with
// users on: the leader checks that user's write permission, and scopes the producer ID of a
// kind 2 request (a decoded part was scoped where it was decoded). Answer
// (200 only): u count, then per request: u status, string Content-Type, string Retry-After,
// bytes body. Any other answer (an older leader without the route, a node that no longer
// leads, a malformed batch) means nothing of the batch was taken: the follower then
// forwards each request on its own, as before.

const (
	// forwardBatchInFlight bounds the batches a follower has on their way to one group's
	// leader; requests arriving meanwhile wait and go in the next batch.
	forwardBatchInFlight = 2
	// forwardBatchMax bounds the requests of one batch.
	forwardBatchMax = 1024
	// forwardBatchOverhead is what the batch format may add to the bodies' bytes.
	forwardBatchOverhead = 1 << 20
)

// fwdReq is one ingest request (or one group's part of one) waiting to go to the leader.
type fwdReq struct {
	stream, producerID, producerSeq string
	// user is the user the request acts for ("" with users off).
	user string
	body []byte
	// command, when set, is a decoded part instead: a KindBatch fsm.Command of one part,
	// encoded (stream, producer and body are then unused).
	command []byte
	done    chan fwdReply // buffered: the sender never blocks
}

// Kinds of request in a forwarded batch.
const (
	fwdKindBody     byte = 0
	fwdKindPart     byte = 1
	fwdKindUserBody byte = 2
	fwdKindUserPart byte = 3
)

// size is the request's bytes, for bounding a batch.
func (r *fwdReq) size() int { return len(r.body) + len(r.command) }

// fwdReply is the leader's answer to one request of a batch.
type fwdReply struct {
	status                  int
	contentType, retryAfter string
	body                    []byte
	// err: the batch could not be sent or its answer read.
	err error
	// alone: the leader refused the batch as a whole, having taken none of it: forward
	// the request on its own.
	alone bool
}

// forwarder batches one group's forwarded ingest requests.
type forwarder struct {
	s *Server
	g int

	mu       sync.Mutex
	queue    []*fwdReq
	inFlight int // senders running
}

func (s *Server) forwarderOf(g int) *forwarder {
	s.fwdOnce.Do(func() {
		s.fwd = make([]*forwarder, len(s.groups))
		for i := range s.fwd {
			s.fwd[i] = &forwarder{s: s, g: i}
		}
	})
	return s.fwd[g]
}

// forwardBatched passes an ingest request for group g, which this node does not lead, to
// the leader in a batch, and relays the leader's answer.
func (s *Server) forwardBatched(w http.ResponseWriter, r *http.Request, g int, stream string, body []byte) {
	req := &fwdReq{stream: stream, producerID: r.Header.Get("Producer-Id"), producerSeq: r.Header.Get("Producer-Seq"),
		user: userOf(r.Context()), body: body, done: make(chan fwdReply, 1)}
	s.forwarderOf(g).submit(req)
	var rep fwdReply
	select {
	case rep = <-req.done:
	case <-r.Context().Done():
		return // the client is gone; the leader may still apply the request
	}
	switch {
	case rep.alone:
		s.forward(w, r, g, body)
	case rep.err != nil:
		// The leader may have applied the request before the connection broke.
		writeUnavailable(w, rep.err.Error()+"; retry with the same Producer-Id and Producer-Seq")
	default:
		if rep.contentType != "" {
			w.Header().Set("Content-Type", rep.contentType)
		}
		if rep.retryAfter != "" {
			w.Header().Set("Retry-After", rep.retryAfter)
		}
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.body)
	}
}

// submit queues req and starts a sender unless enough are running.
func (f *forwarder) submit(req *fwdReq) {
	f.mu.Lock()
	f.queue = append(f.queue, req)
	start := f.inFlight < forwardBatchInFlight
	if start {
		f.inFlight++
	}
	f.mu.Unlock()
	if start {
		go f.run()
	}
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

// take removes the next batch from the queue: at most forwardBatchMax requests and, past
// the first, MaxBodyBytes of bodies. It returns nil (and counts the sender out) when the
// queue is empty.
func (f *forwarder) take() []*fwdReq {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queue) == 0 {
		f.inFlight--
		return nil
	}
	n, size := 1, f.queue[0].size()
	for n < len(f.queue) && n < forwardBatchMax && int64(size+f.queue[n].size()) <= f.s.cfg.MaxBodyBytes {
		size += f.queue[n].size()
		n++
	}
	batch := make([]*fwdReq, n)
	copy(batch, f.queue)
	clear(f.queue[:n])
	f.queue = f.queue[n:]
	if len(f.queue) == 0 {
		f.queue = nil // let the array go
	}
	return batch
}

// send posts one batch to the leader and hands every request its answer.
func (f *forwarder) send(batch []*fwdReq) {
	size := 16
	for _, req := range batch {
		size += 1 + 5*10 + len(req.stream) + len(req.producerID) + len(req.producerSeq) + len(req.user) + req.size()
	}
	wr := wire.Writer{Buf: make([]byte, 0, size)}
	wr.Uvarint(uint64(len(batch)))
	for _, req := range batch {
		if req.command != nil {
			if req.user != "" {
				wr.Byte(fwdKindUserPart)
				wr.String(req.user)
			} else {
				wr.Byte(fwdKindPart)
			}
			wr.Bytes(req.command)
			continue
		}
		if req.user != "" {
			wr.Byte(fwdKindUserBody)
			wr.String(req.user)
		} else {
			wr.Byte(fwdKindBody)
		}
		wr.String(req.stream)
		wr.String(req.producerID)
		wr.String(req.producerSeq)
		wr.Bytes(req.body)
	}
	replies, err := f.exchange(wr.Buf, len(batch))
	for i, req := range batch {
		switch {
		case errors.Is(err, errBatchRefused):
			req.done <- fwdReply{alone: true}
		case err != nil:
			req.done <- fwdReply{err: err}
		default:
			req.done <- replies[i]
		}
	}
}

// errBatchRefused: the leader answered the batch with something other than 200, having
// taken none of it.
var errBatchRefused = errors.New("httpapi: batch refused")

// exchange sends an encoded batch of n requests and decodes the answers.
func (f *forwarder) exchange(data []byte, n int) ([]fwdReply, error) {
	header := http.Header{"Content-Type": {"application/octet-stream"}}
	resp, err := f.s.call(context.Background(), f.g, http.MethodPost, "/v1/internal/ingest", nil, header, data)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil, errBatchRefused
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("forwarding to the leader of group %d failed: %w", f.g, err)
	}
	rd := wire.NewReader(b)
	if m := rd.Count(4); rd.Err() == nil && m != n {
		return nil, fmt.Errorf("the leader of group %d answered %d of %d forwarded requests", f.g, m, n)
	}
	replies := make([]fwdReply, n)
	for i := range replies {
		status := rd.Uvarint()
		replies[i] = fwdReply{status: int(status), contentType: rd.String(), retryAfter: rd.String(), body: rd.Bytes()}
		if rd.Err() == nil && (status < 100 || status > 999) {
			rd.Fail(fmt.Errorf("status %d", status))
		}
	}
	if rd.Err() == nil && rd.Len() != 0 {
		rd.Fail(fmt.Errorf("%d trailing bytes", rd.Len()))
	}
	if err := rd.Err(); err != nil {
		return nil, fmt.Errorf("the leader of group %d answered a malformed batch: %w", f.g, err)
	}
	return replies, nil
}

// handleInternalIngest takes a batch of forwarded ingest requests for one group (see the
// format above). Only a node that leads the group takes it.
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
	grp := s.groups[g]
	if !grp.IsLeader() {
		writeUnavailable(w, "leadership moved while the request was forwarded; retry")
		return
	}
	rd := wire.NewReader(data)
	n := rd.Count(2)
	reqs := make([]fwdReq, 0, n)
	decoded := make([]*fsm.Part, n) // the parts of kind 1
	for i := range n {
		var req fwdReq
		switch kind := rd.Byte(); kind {
		case fwdKindBody, fwdKindUserBody:
			if kind == fwdKindUserBody {
				req.user = rd.String()
			}
			req.stream, req.producerID, req.producerSeq = rd.String(), rd.String(), rd.String()
			if b := rd.Bytes(); rd.Err() == nil {
				req.body = b
			}
		case fwdKindPart, fwdKindUserPart:
			if kind == fwdKindUserPart {
				req.user = rd.String()
			}
			var c fsm.Command
			if err := c.UnmarshalBinary(rd.Bytes()); err != nil || c.Kind != fsm.KindBatch || len(c.Parts) != 1 {
				rd.Fail(fmt.Errorf("request %d is not one part: %v", i, err))
				break
			}
			decoded[i] = &c.Parts[0]
			req.stream = c.Parts[0].Stream
		default:
			rd.Fail(fmt.Errorf("request %d of unknown kind %d", i, kind))
		}
		if rd.Err() != nil {
			break
		}
		reqs = append(reqs, req)
	}
	if rd.Err() == nil && rd.Len() != 0 {
		rd.Fail(fmt.Errorf("%d trailing bytes", rd.Len()))
	}
	if err := rd.Err(); err != nil || n == 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("malformed forwarded batch (%d requests): %v", n, err))
		return
	}

	answers := make([]recorder, n)
	// The streams' definitions, read once for the batch under one read lock.
	defs := map[string]*siddhiql.StreamDef{}
	for _, req := range reqs {
		defs[req.stream] = nil
	}
	if err := grp.Read(r.Context(), raftnode.Stale, 0, func(e *engine.Engine) {
		for name := range defs {
			if d, ok := e.Stream(name); ok {
				defs[name] = d
			}
		}
	}); err != nil {
		for i := range answers {
			s.groupError(&answers[i], err)
		}
		s.writeBatchAnswers(w, answers)
		return
	}
	var parts []fsm.Part
	var of []int // the request of each part
	for i, req := range reqs {
		if s.cfg.Users != nil && req.user != "" && !s.cfg.Users.Allowed(req.user, permWrite) {
			writeError(&answers[i], http.StatusForbidden, fmt.Sprintf("user %q may not ingest into stream %q: that needs the %q permission", req.user, req.stream, permWrite))
			continue
		}
		if p := decoded[i]; p != nil {
			if defs[req.stream] == nil {
				writeError(&answers[i], http.StatusNotFound, fmt.Sprintf("unknown stream %q: deploy an app that defines it (GET /v1/apps lists them)", req.stream))
				continue
			}
			// Checked against the schema by Ingest (CheckBatch).
			parts = append(parts, *p)
			of = append(of, i)
			continue
		}
		user := req.user
		if s.cfg.Users == nil {
			user = "" // users are off here: producer IDs are not scoped
		}
		part := fsm.Part{Stream: req.stream}
		if code, msg := producerOf(user, req.producerID, req.producerSeq, &part); code != 0 {
			writeError(&answers[i], code, msg)
			continue
		}
		def := defs[req.stream]
		if def == nil {
			writeError(&answers[i], http.StatusNotFound, fmt.Sprintf("unknown stream %q: deploy an app that defines it (GET /v1/apps lists them)", req.stream))
			continue
		}
		events, apiErr := decodeEvents(def.Attributes, req.body)
		if apiErr != nil {
			writeJSON(&answers[i], http.StatusBadRequest, apiErr)
			continue
		}
		part.Events = events
		parts = append(parts, part)
		of = append(of, i)
	}
	if len(parts) > 0 {
		res, err := grp.Ingest(r.Context(), parts)
		for j, i := range of {
			switch {
			case errors.Is(err, raftnode.ErrNotLeader):
				// What a forwarded request gets when leadership moved on the way.
				writeUnavailable(&answers[i], "leadership moved while the request was forwarded; retry")
			case err != nil:
				s.groupError(&answers[i], err)
			default:
				s.writePart(&answers[i], g, res.Index, res.Parts[j], len(parts[j].Events))
			}
		}
	}
	s.writeBatchAnswers(w, answers)
}

// writeBatchAnswers answers a forwarded batch with every request's answer.
func (s *Server) writeBatchAnswers(w http.ResponseWriter, answers []recorder) {
	size := 16
	for i := range answers {
		size += 40 + answers[i].buf.Len()
	}
	wr := wire.Writer{Buf: make([]byte, 0, size)}
	wr.Uvarint(uint64(len(answers)))
	for i := range answers {
		a := &answers[i]
		wr.Uvarint(uint64(a.status()))
		wr.String(a.h.Get("Content-Type"))
		wr.String(a.h.Get("Retry-After"))
		wr.Bytes(a.buf.Bytes())
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(wr.Buf)
}

// recorder is an http.ResponseWriter that keeps one request's answer in a batch.
type recorder struct {
	h    http.Header
	code int
	buf  bytes.Buffer
}

func (r *recorder) Header() http.Header {
	if r.h == nil {
		r.h = http.Header{}
	}
	return r.h
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.buf.Write(b)
}

func (r *recorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}
