package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/siddhiql"
)

// outboxGroup is a group whose local replica's outbox can be read (*raftnode.Node).
type outboxGroup interface {
	FSM() *fsm.FSM
}

// sinkGroup is a group that reports its sinks (*raftnode.Node).
type sinkGroup interface {
	SinkStatus() []raftnode.SinkStatus
}

// subscribeBatch is how many outputs a subscription reads from the outbox at a time.
const subscribeBatch = 512

// keepAlive is how often an idle subscription sends an SSE comment, so proxies and clients
// notice a dead connection.
const keepAlive = 15 * time.Second

// CloseSubscriptions ends every open subscription (their clients reconnect elsewhere with
// Last-Event-ID). Register it with http.Server.RegisterOnShutdown so that Shutdown does not
// wait for them.
func (s *Server) CloseSubscriptions() { s.closeSubs() }

// handleSubscribe streams a query output stream as Server-Sent Events from this node's
// replica of one group (stale reads: every replica has the same outbox, and the IDs make a
// subscription resumable anywhere).
//
//	GET /v1/streams/{stream}/subscribe?from=ID&group=G
//
// from (or the Last-Event-ID header) is the ID of the last output the client has: the
// subscription replays every retained output after it, then follows new ones. from=earliest
// replays everything retained; no from follows only new outputs. An ID older than what is
// retained answers 410 Gone. Each event is
//
//	id: G-INDEX-SEQ
//	event: output            (or "expired" for expired events)
//	data: {"id":"G-INDEX-SEQ","stream":"Alerts","app":"A","ts":MS,"expired":false,"data":{...}}
//
// With several groups each group's outputs are a separate subscription: group defaults to
// the group of from's ID, else 0.
func (s *Server) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	stream := chi.URLParam(r, "stream")
	g, present, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	from := r.URL.Query().Get("from")
	if from == "" {
		from = r.Header.Get("Last-Event-ID")
	}
	var after fsm.OutPos
	if from != "" && from != "earliest" {
		fg, p, err := fsm.ParseOutputID(from)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error()+" (or from=earliest)")
			return
		}
		if int(fg) >= len(s.groups) || (present && int(fg) != g) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("output ID %s is of group %d, not of group %d", from, fg, g))
			return
		}
		g, after = int(fg), p
	}
	rep, hosted := replicaOf(s.groups[g])
	if !hosted {
		writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("this node holds no replica of group %d: subscribe at a node that does (GET /v1/cluster/map lists them)", g))
		return
	}
	og, ok := rep.(outboxGroup)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this group's replica cannot serve subscriptions")
		return
	}
	f := og.FSM()
	if !f.Catalog().IsOutputStream(stream) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown output stream %q: subscribe to a stream that a query inserts into", stream))
		return
	}
	trimmed, last := f.OutputBounds(stream)
	switch from {
	case "":
		after = last
	case "earliest":
		after = trimmed
	}
	if _, err := f.OutputsAfter(stream, after, 1); errors.Is(err, fsm.ErrOutputsGone) {
		writeError(w, http.StatusGone, fmt.Sprintf("outputs of stream %s after %s are no longer retained (group %d keeps those after %s): resubscribe with from=earliest and accept the gap",
			stream, from, g, trimmed.ID(uint32(g))))
		return
	}
	if !s.openSub() {
		writeUnavailable(w, fmt.Sprintf("this node serves its limit of %d subscriptions (--max-subscribers): subscribe on another node or retry later", s.cfg.Limits.withDefaults().MaxSubscribers))
		return
	}
	defer s.closeSub()
	// A subscription outlives the server's write timeout, but every write has its own
	// deadline: a client that stops reading is dropped once a write blocks that long.
	rc := http.NewResponseController(w)
	stall := s.cfg.Limits.withDefaults().SubscriberWriteTimeout
	deadlines := rc.SetWriteDeadline(time.Time{}) == nil
	if deadlines {
		// A kept-alive connection's next response must not inherit the last deadline.
		defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	} else {
		s.logger.Warn("subscription without write deadlines: the response writer does not support them", "stream", stream)
	}
	send := func(b []byte) bool {
		if deadlines && rc.SetWriteDeadline(time.Now().Add(stall)) != nil {
			return false
		}
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	buf := fmt.Appendf(nil, ": stream %s of group %d after %s\n\n", stream, g, after.ID(uint32(g)))
	if !send(buf) {
		return
	}
	closed := s.subsClosed()
	ka := time.NewTicker(keepAlive)
	defer ka.Stop()
	for {
		changed := f.OutputsChanged()
		es, err := f.OutputsAfter(stream, after, subscribeBatch)
		if err != nil {
			// The client fell behind the retention: say so and end; it resumes with from=earliest.
			buf = fmt.Appendf(buf[:0], "event: error\ndata: %s\n\n", strconv.Quote(err.Error()))
			send(buf)
			return
		}
		if len(es) > 0 {
			buf = buf[:0]
			for i := range es {
				e := &es[i]
				kind := "output"
				if e.Expired {
					kind = "expired"
				}
				buf = append(buf, "id: "...)
				buf = append(buf, e.Pos.ID(uint32(g))...)
				buf = append(buf, "\nevent: "...)
				buf = append(buf, kind...)
				buf = append(buf, "\ndata: "...)
				buf = e.AppendJSON(buf, uint32(g), stream)
				buf = append(buf, "\n\n"...)
			}
			if !send(buf) {
				return
			}
			after = es[len(es)-1].Pos
			if len(es) == subscribeBatch {
				continue
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-closed:
			return
		case <-changed:
		case <-ka.C:
			if !send([]byte(": keep-alive\n\n")) {
				return
			}
		}
	}
}

// openSub counts a new subscription in; false when the node already serves its limit.
func (s *Server) openSub() bool {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	if s.subsOpen >= s.cfg.Limits.withDefaults().MaxSubscribers {
		return false
	}
	s.subsOpen++
	return true
}

func (s *Server) closeSub() {
	s.subsMu.Lock()
	s.subsOpen--
	s.subsMu.Unlock()
}

// openSubscriptions is the number of subscriptions being served.
func (s *Server) openSubscriptions() int {
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	return s.subsOpen
}

// handleSinks lists group g's sinks (every group with no ?group=) and their positions.
func (s *Server) handleSinks(w http.ResponseWriter, r *http.Request) {
	g, present, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	type sinkJSON struct {
		Group       int    `json:"group"`
		App         string `json:"app"`
		Stream      string `json:"stream"`
		Sink        int    `json:"sink"`
		Type        string `json:"type"`
		URL         string `json:"url,omitempty"`
		Delivered   string `json:"delivered"`
		Undelivered int    `json:"undelivered"`
		Active      bool   `json:"active"`
		Failing     bool   `json:"failing"`
		LastError   string `json:"last_error,omitempty"`
	}
	out := []sinkJSON{}
	for i, grp := range s.groups {
		if present && i != g {
			continue
		}
		rep, _ := replicaOf(grp)
		sg, ok := rep.(sinkGroup)
		if !ok {
			continue
		}
		for _, st := range sg.SinkStatus() {
			out = append(out, sinkJSON{Group: i, App: st.App, Stream: st.Stream, Sink: st.Index, Type: st.Type, URL: siddhiql.RedactURL(st.URL),
				Delivered: st.Delivered.ID(uint32(i)), Undelivered: st.Undelivered, Active: st.Active, Failing: st.Failing, LastError: siddhiql.RedactURL(st.LastError)})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sinks": out})
}
