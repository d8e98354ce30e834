package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// maxClockOffsetMs bounds a clock offset (about 100 years either way) so that it fits a
// time.Duration.
const maxClockOffsetMs = 100 * 365 * 24 * 3600 * 1000

// ClockOffset is the body of POST /v1/debug/clock and the answer of GET and POST: the
// milliseconds this node's leader clock is ahead of the wall clock (negative: behind).
type ClockOffset struct {
	OffsetMs *int64 `json:"offset_ms"`
}

// handleClock reads (GET) or sets (POST) the offset of the node's leader clock. It exists
// only with fault injection on (Config.Clock); stamps never go back, so a negative jump
// holds the stamped time until the skewed clock passes the last stamp.
func (s *Server) handleClock(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Clock == nil {
		writeError(w, http.StatusNotFound, "fault injection is off on this node: start tally serve with --fault-injection to use /v1/debug/clock")
		return
	}
	if r.Method == http.MethodPost {
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		var req ClockOffset
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, `malformed clock request (want {"offset_ms": N}): `+err.Error())
			return
		}
		if req.OffsetMs == nil {
			writeError(w, http.StatusBadRequest, `clock request needs "offset_ms": the milliseconds to add to this node's clock`)
			return
		}
		if ms := *req.OffsetMs; ms > maxClockOffsetMs || ms < -maxClockOffsetMs {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("offset_ms %d is out of range: at most %d either way", ms, int64(maxClockOffsetMs)))
			return
		}
		prev := s.cfg.Clock.SetOffset(time.Duration(*req.OffsetMs) * time.Millisecond)
		s.logger.Warn("fault injection: leader clock offset changed", "offset_ms", *req.OffsetMs, "previous_ms", prev.Milliseconds())
	}
	ms := s.cfg.Clock.Offset().Milliseconds()
	writeJSON(w, http.StatusOK, ClockOffset{OffsetMs: &ms})
}
