package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/siddhiql"
)

// IngestResponse is the body of a successful ingest.
type IngestResponse struct {
	Group uint32 `json:"group"`
	// Index is the Raft index of the entry that carried the events: read your writes with
	// ?min_index=Index on any replica.
	Index  uint64 `json:"index"`
	Events int    `json:"events"`
	// Duplicate is set when Producer-Id/Producer-Seq were seen before: nothing was
	// applied again.
	Duplicate bool `json:"duplicate"`
}

// maxProducerID bounds the Producer-Id header.
const maxProducerID = 256

func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request) {
	stream := chi.URLParam(r, "stream")
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	if !s.group.IsLeader() {
		s.forward(w, r, body)
		return
	}
	part := fsm.Part{Stream: stream}
	if code, msg := producer(r, &part); code != 0 {
		writeError(w, code, msg)
		return
	}
	var attrs []siddhiql.Attribute
	found := false
	if err := s.group.Read(r.Context(), raftnode.Stale, 0, func(e *engine.Engine) {
		if def, ok := e.Stream(stream); ok {
			attrs, found = def.Attributes, true
		}
	}); err != nil {
		s.groupError(w, err)
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown stream %q: deploy an app that defines it (GET /v1/apps lists them)", stream))
		return
	}
	events, apiErr := decodeEvents(attrs, body)
	if apiErr != nil {
		writeJSON(w, http.StatusBadRequest, apiErr)
		return
	}
	part.Events = events
	res, err := s.group.Ingest(r.Context(), []fsm.Part{part})
	if errors.Is(err, raftnode.ErrNotLeader) {
		s.forward(w, r, body)
		return
	}
	if err != nil {
		s.groupError(w, err)
		return
	}
	pr := res.Parts[0]
	switch {
	case pr.Err == nil:
		s.metrics.events.Add(float64(len(events)))
		writeJSON(w, http.StatusOK, IngestResponse{Group: s.group.Status().Group, Index: res.Index, Events: len(events), Duplicate: pr.Duplicate})
	case errors.Is(pr.Err, fsm.ErrSeqTooOld):
		writeError(w, http.StatusConflict, pr.Err.Error())
	case errors.Is(pr.Err, engine.ErrUnknownStream):
		writeError(w, http.StatusNotFound, pr.Err.Error())
	case errors.Is(pr.Err, engine.ErrBadEvent):
		writeError(w, http.StatusBadRequest, pr.Err.Error())
	default:
		writeError(w, http.StatusInternalServerError, pr.Err.Error())
	}
}

// producer reads Producer-Id and Producer-Seq into p. A non-zero code is an error to answer.
func producer(r *http.Request, p *fsm.Part) (int, string) {
	id, seq := r.Header.Get("Producer-Id"), r.Header.Get("Producer-Seq")
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
	p.ProducerID, p.Seq = id, n
	return 0, ""
}

// decodeEvents reads a JSON array of objects or NDJSON (one object per line).
func decodeEvents(attrs []siddhiql.Attribute, body []byte) ([]expr.Row, *apiError) {
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
			i := i
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
