package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/partition"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/siddhiql"
)

// PartResponse is one group's part of an ingest request.
type PartResponse struct {
	Group uint32 `json:"group"`
	// Index is the Raft index of the group's entry that carried the part: read your writes
	// with ?min_index=GROUP:INDEX on any replica.
	Index     uint64 `json:"index"`
	Events    int    `json:"events"`
	Duplicate bool   `json:"duplicate"`
	Status    int    `json:"status"`
	Error     string `json:"error,omitempty"`
}

// IngestResponse is the body of an ingest answer. Group and Index are the first part's (the
// only one in a one-group cluster); Parts has every group's.
type IngestResponse struct {
	Group  uint32 `json:"group"`
	Index  uint64 `json:"index"`
	Events int    `json:"events"`
	// Duplicate is set when every part's Producer-Id/Producer-Seq was seen before:
	// nothing was applied again.
	Duplicate bool           `json:"duplicate"`
	Parts     []PartResponse `json:"parts,omitempty"`
	Error     string         `json:"error,omitempty"`
}

// maxProducerID bounds the Producer-Id header.
const maxProducerID = 256

// handleIngest takes events for a stream. In a cluster of several groups the events are
// routed by the stream's partition key (or round-robin, or to every group) and each group's
// part goes to that group's leader, concurrently; the answer comes once every part is
// committed. A part that failed is reported with its status; retrying the whole request with
// the same Producer-Id and Producer-Seq applies each part at most once.
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request) {
	stream := chi.URLParam(r, "stream")
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	g, present, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	if present || len(s.groups) == 1 {
		s.ingestGroup(w, r, g, stream, body)
		return
	}
	var proto fsm.Part
	if code, msg := producer(r, &proto); code != 0 {
		writeError(w, code, msg)
		return
	}
	def, ok := s.streamDef(w, r, 0, stream, body)
	if !ok {
		return
	}
	events, apiErr := decodeEvents(def.Attributes, body)
	if apiErr != nil {
		writeJSON(w, http.StatusBadRequest, apiErr)
		return
	}
	parts := s.router.Route(def.Routing, partition.KeyIndex(def), events)
	out := IngestResponse{Parts: make([]PartResponse, len(parts)), Duplicate: true}
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			part := fsm.Part{Stream: stream, ProducerID: proto.ProducerID, Seq: proto.Seq, Events: p.Events}
			out.Parts[i] = s.ingestPart(r.Context(), int(p.Group), part, def.Attributes, r.Header)
		}()
	}
	wg.Wait()
	code := http.StatusOK
	var errs []string
	for _, p := range out.Parts {
		out.Events += p.Events
		out.Duplicate = out.Duplicate && p.Duplicate
		if p.Status != http.StatusOK {
			errs = append(errs, fmt.Sprintf("group %d: %s", p.Group, p.Error))
			if code == http.StatusOK || p.Status == http.StatusServiceUnavailable {
				code = p.Status
			}
		}
	}
	if len(out.Parts) > 0 {
		out.Group, out.Index = out.Parts[0].Group, out.Parts[0].Index
	}
	if code != http.StatusOK {
		out.Error = strings.Join(errs, "; ") + " (retry the whole request with the same Producer-Id and Producer-Seq: parts that were applied are not applied again)"
		if code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
	} else {
		s.metrics.events.Add(float64(out.Events))
	}
	writeJSON(w, code, out)
}

// ingestPart commits one group's part: on this node when it leads the group, else on the
// leader, over HTTP.
func (s *Server) ingestPart(ctx context.Context, g int, part fsm.Part, attrs []siddhiql.Attribute, header http.Header) PartResponse {
	pr := PartResponse{Group: uint32(g)}
	if s.groups[g].IsLeader() {
		res, err := s.groups[g].Ingest(ctx, []fsm.Part{part})
		if err == nil {
			return partResult(pr, res.Index, res.Parts[0])
		}
		if !errors.Is(err, raftnode.ErrNotLeader) {
			pr.Status, pr.Error = errorStatus(err)
			return pr
		}
	}
	// To the leader, already decoded, batched with other parts and requests for the group.
	cmd := fsm.Command{Kind: fsm.KindBatch, Parts: []fsm.Part{part}}
	data, err := cmd.MarshalBinary()
	if err != nil {
		pr.Status, pr.Error = http.StatusInternalServerError, err.Error()
		return pr
	}
	req := &fwdReq{stream: part.Stream, command: data, user: userOf(ctx), done: make(chan fwdReply, 1)}
	s.forwarderOf(g).submit(req)
	var rep fwdReply
	select {
	case rep = <-req.done:
	case <-ctx.Done():
		pr.Status, pr.Error = http.StatusServiceUnavailable, fmt.Sprintf("forwarding to the leader of group %d: %v", g, ctx.Err())
		return pr
	}
	switch {
	case rep.err != nil:
		pr.Status, pr.Error = http.StatusServiceUnavailable, rep.err.Error()
		return pr
	case !rep.alone:
		return leaderAnswer(pr, g, rep.status, rep.body)
	}
	// A leader without batches: the part as NDJSON, on its own.
	var body []byte
	for _, ev := range part.Events {
		body = expr.AppendJSONObject(body, attrs, ev)
		body = append(body, '\n')
	}
	resp, err := s.call(ctx, g, http.MethodPost, "/v1/streams/"+url.PathEscape(part.Stream)+"/events", nil, header, body)
	if err != nil {
		pr.Status, pr.Error = http.StatusServiceUnavailable, err.Error()
		return pr
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return leaderAnswer(pr, g, resp.StatusCode, b)
}

// leaderAnswer reads the leader's answer (status and body) to a forwarded part.
func leaderAnswer(pr PartResponse, g, status int, b []byte) PartResponse {
	var ir IngestResponse
	if err := json.Unmarshal(b, &ir); err != nil {
		pr.Status, pr.Error = http.StatusBadGateway, fmt.Sprintf("the leader of group %d answered %d: %s", g, status, bytes.TrimSpace(b))
		return pr
	}
	pr.Status, pr.Index, pr.Events, pr.Duplicate, pr.Error = status, ir.Index, ir.Events, ir.Duplicate, ir.Error
	return pr
}

// partResult turns a local ingest result (the entry's index and the part's result) into a
// part's response.
func partResult(pr PartResponse, index uint64, p fsm.PartResult) PartResponse {
	pr.Index = index
	if p.Err != nil {
		pr.Status, pr.Error = errorStatus(p.Err)
		return pr
	}
	pr.Status, pr.Events, pr.Duplicate = http.StatusOK, p.Events, p.Duplicate
	if p.Duplicate {
		pr.Events = 0
	}
	return pr
}

// ingestGroup takes events for one group: the only one, or the one a forwarded part names.
// A follower passes the request to the leader, batched with other requests (forwardBatched).
func (s *Server) ingestGroup(w http.ResponseWriter, r *http.Request, g int, stream string, body []byte) {
	grp := s.groups[g]
	if !grp.IsLeader() {
		if r.Header.Get(forwardedHeader) == "" && r.URL.Query().Get("redirect") != "true" {
			s.forwardBatched(w, r, g, stream, body)
			return
		}
		s.forward(w, r, g, body)
		return
	}
	part := fsm.Part{Stream: stream}
	if code, msg := producer(r, &part); code != 0 {
		writeError(w, code, msg)
		return
	}
	def, ok := s.streamDef(w, r, g, stream, nil)
	if !ok {
		return
	}
	events, apiErr := decodeEvents(def.Attributes, body)
	if apiErr != nil {
		writeJSON(w, http.StatusBadRequest, apiErr)
		return
	}
	part.Events = events
	res, err := grp.Ingest(r.Context(), []fsm.Part{part})
	if errors.Is(err, raftnode.ErrNotLeader) {
		s.forward(w, r, g, body)
		return
	}
	if err != nil {
		s.groupError(w, err)
		return
	}
	s.writePart(w, g, res.Index, res.Parts[0], len(events))
}

// writePart answers a one-group ingest request with its part's outcome.
func (s *Server) writePart(w http.ResponseWriter, g int, index uint64, p fsm.PartResult, events int) {
	pr := partResult(PartResponse{Group: uint32(g)}, index, p)
	if pr.Status == http.StatusServiceUnavailable {
		writeUnavailable(w, pr.Error)
		return
	}
	if pr.Status != http.StatusOK {
		writeError(w, pr.Status, pr.Error)
		return
	}
	s.metrics.events.Add(float64(events))
	writeJSON(w, http.StatusOK, IngestResponse{Group: uint32(g), Index: pr.Index, Events: events, Duplicate: pr.Duplicate})
}

// streamDef finds a stream's definition in group g's replica; ok is false when the
// response has been written (404 for an unknown stream). With body set (a request to split
// over groups), a stream this node does not know is passed whole to the leader of group 0,
// whose view is current: this node's replicas may lag.
func (s *Server) streamDef(w http.ResponseWriter, r *http.Request, g int, stream string, body []byte) (*siddhiql.StreamDef, bool) {
	var def *siddhiql.StreamDef
	if err := s.groups[g].Read(r.Context(), raftnode.Stale, 0, func(e *engine.Engine) {
		if d, ok := e.Stream(stream); ok {
			def = d
		}
	}); err != nil {
		s.groupError(w, err)
		return nil, false
	}
	if def == nil && s.cfg.StreamDefs != nil {
		def, _ = s.cfg.StreamDefs.StreamDef(stream)
	}
	if def == nil {
		if body != nil && s.relay(w, r, body) {
			return nil, false
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown stream %q: deploy an app that defines it (GET /v1/apps lists them)", stream))
		return nil, false
	}
	return def, true
}

// producer reads Producer-Id and Producer-Seq into p, the ID scoped to the request's user
// (scopeProducer). A non-zero code is an error to answer.
func producer(r *http.Request, p *fsm.Part) (int, string) {
	return producerOf(userOf(r.Context()), r.Header.Get("Producer-Id"), r.Header.Get("Producer-Seq"), p)
}

// producerOf reads the values of Producer-Id and Producer-Seq of a request acting for user
// into p, as producer does. This is the one place a producer ID is scoped: requests that
// travel on to a leader carry the headers as sent and the user, or the part already
// decoded.
func producerOf(user, id, seq string, p *fsm.Part) (int, string) {
	if id == "" && seq == "" {
		return 0, ""
	}
	if id == "" || seq == "" {
		return http.StatusBadRequest, "Producer-Id and Producer-Seq go together: send both or neither"
	}
	if len(id) > maxProducerID {
		return http.StatusBadRequest, fmt.Sprintf("Producer-Id is over %d bytes", maxProducerID)
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return http.StatusBadRequest, fmt.Sprintf("Producer-Seq %q is not an unsigned integer", seq)
	}
	p.ProducerID, p.Seq = scopeProducer(user, id), n
	return 0, ""
}

// decodeEvents reads a JSON array of objects or NDJSON (one object per line).
// The common case takes expr.DecodeEvents; anything it does not handle (including every
// malformed body) goes through encoding/json, which names the error.
func decodeEvents(attrs []siddhiql.Attribute, body []byte) ([]expr.Row, *apiError) {
	if rows, ok := expr.DecodeEvents(attrs, body); ok {
		return rows, nil
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, &apiError{Error: "the request body has no events: send a JSON array of objects or NDJSON"}
	}
	var raws []json.RawMessage
	if trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, &apiError{Error: "malformed JSON array: " + err.Error()}
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		for {
			var raw json.RawMessage
			err := dec.Decode(&raw)
			if err == io.EOF {
				break
			}
			if err != nil {
				n := len(raws)
				return nil, &apiError{Error: fmt.Sprintf("event %d: malformed JSON: %v", n, err), Event: &n}
			}
			raws = append(raws, raw)
		}
	}
	if len(raws) == 0 {
		return nil, &apiError{Error: "the request body has no events"}
	}
	rows := make([]expr.Row, len(raws))
	for i, raw := range raws {
		row, err := expr.DecodeJSON(attrs, raw)
		if err != nil {
			e := &apiError{Error: fmt.Sprintf("event %d: %v", i, err), Event: &i}
			var fe *expr.FieldError
			if errors.As(err, &fe) {
				e.Field = fe.Field
			}
			return nil, e
		}
		rows[i] = row
	}
	return rows, nil
}
