package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/fsm"
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
// part goes to that group's leader, concurrently (ingester, route.go); the answer comes once
// every part is committed. A part that failed is reported with its status; retrying the
// whole request with the same Producer-Id and Producer-Seq applies each part at most once.
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
	split := !present && len(s.groups) > 1
	if !split && r.URL.Query().Get("redirect") == "true" && !s.groups[g].IsLeader() {
		s.redirect(w, r, g)
		return
	}
	var p fsm.Part
	if code, msg := producer(r, &p); code != 0 {
		writeError(w, code, msg)
		return
	}
	raw := rawRequest{stream: stream, producerID: p.ProducerID, seq: p.Seq, body: body}
	s.writeIngest(w, split, s.ing.request(r.Context(), g, split, raw, userOf(r.Context()), true))
}

// writeIngest answers an ingest request from its parts' results: a request for one group
// (or one refused before it was split) with that part's outcome, a split one with every
// part's.
func (s *Server) writeIngest(w http.ResponseWriter, split bool, res []partResult) {
	if !split || (len(res) == 1 && res[0].whole) {
		p := res[0]
		switch {
		case p.code == codeOK:
			s.metrics.events.Add(float64(p.events))
			writeJSON(w, http.StatusOK, IngestResponse{Group: p.group, Index: p.index, Events: p.events, Duplicate: p.duplicate})
		default:
			e := apiError{Error: p.msg, Field: p.field}
			if p.event >= 0 {
				e.Event = &p.event
			}
			if p.code.status() == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "1")
			}
			writeJSON(w, p.code.status(), e)
		}
		return
	}
	out := IngestResponse{Parts: make([]PartResponse, len(res)), Duplicate: true}
	status := http.StatusOK
	var errs []string
	for i, p := range res {
		pr := PartResponse{Group: p.group, Index: p.index, Status: p.code.status()}
		if p.code == codeOK {
			pr.Duplicate = p.duplicate
			if !p.duplicate {
				pr.Events = p.events
			}
		} else {
			pr.Error = p.msg
			errs = append(errs, fmt.Sprintf("group %d: %s", p.group, p.msg))
			if status == http.StatusOK || pr.Status == http.StatusServiceUnavailable {
				status = pr.Status
			}
		}
		out.Parts[i] = pr
		out.Events += pr.Events
		out.Duplicate = out.Duplicate && pr.Duplicate
	}
	if len(out.Parts) > 0 {
		out.Group, out.Index = out.Parts[0].Group, out.Parts[0].Index
	}
	if status != http.StatusOK {
		out.Error = strings.Join(errs, "; ") + " (retry the whole request with the same Producer-Id and Producer-Seq: parts that were applied are not applied again)"
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
	} else {
		s.metrics.events.Add(float64(out.Events))
	}
	writeJSON(w, status, out)
}

// producer reads Producer-Id and Producer-Seq into p, the ID scoped to the request's user
// (scopeProducer). A non-zero code is an error to answer.
func producer(r *http.Request, p *fsm.Part) (int, string) {
	return producerOf(userOf(r.Context()), r.Header.Get("Producer-Id"), r.Header.Get("Producer-Seq"), p)
}

// producerOf reads the values of Producer-Id and Producer-Seq of a request acting for user
// into p, as producer does. This is the one place a producer ID is scoped: the node that
// takes the request scopes it, and whatever travels on to a leader (a decoded part, or a
// request it could not decode) carries the scoped ID.
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
