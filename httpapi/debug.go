package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
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

// stateHashDuty bounds how much of the time state hashes may hold a group's FSM lock:
// after a hash that took d to compute, the next one of the group waits at least
// stateHashDuty×d, and meanwhile callers get the last one (with its own applied index).
// Encoding the state blocks Apply for d, so /v1/debug/state cannot stall ingest for more
// than about 1/stateHashDuty of the time however often it is called.
const stateHashDuty = 10

// stateHashCache remembers each group's last state hash and computes at most one at a time.
type stateHashCache struct {
	mu      sync.Mutex // held while computing: concurrent callers share the result
	entries map[int]stateHashEntry
}

type stateHashEntry struct {
	index uint64
	hash  string
	cost  time.Duration
	done  time.Time
}

// stateHash returns group g's applied index and state hash: a fresh one when the group
// applied entries since the last, unless the last was computed less than stateHashDuty
// times its cost ago.
func (s *Server) stateHash(g int) (uint64, string, error) {
	c := &s.stateHashes
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[g]
	if ok && (s.groups[g].Status().AppliedIndex == e.index || time.Since(e.done) < stateHashDuty*e.cost) {
		return e.index, e.hash, nil
	}
	start := time.Now()
	index, hash, err := s.groups[g].StateHash()
	if err != nil {
		return 0, "", err
	}
	if c.entries == nil {
		c.entries = map[int]stateHashEntry{}
	}
	now := time.Now()
	c.entries[g] = stateHashEntry{index: index, hash: hash, cost: now.Sub(start), done: now}
	return index, hash, nil
}
