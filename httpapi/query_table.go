package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/siddhiql"
)

// tableWriter replicates on-demand table writes (*raftnode.Node).
type tableWriter interface {
	TableWrite(ctx context.Context, app, query string) (uint64, error)
}

// serveTableWrite replicates an on-demand write through group 0's leader (a follower relays
// the request) and answers Siddhi's empty result once it applied.
func (s *Server) serveTableWrite(w http.ResponseWriter, r *http.Request, body []byte, app, query string) {
	if s.relay(w, r, body) {
		return
	}
	rep, _ := replicaOf(s.groups[0])
	tw, ok := rep.(tableWriter)
	if !ok {
		writeSiddhiError(w, http.StatusNotImplemented, "on-demand writes are not supported by this node")
		return
	}
	_, err := tw.TableWrite(r.Context(), app, query)
	var perr *siddhiql.Error
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"records":[]}` + "\n"))
	case errors.Is(err, engine.ErrUnknownApp):
		writeSiddhiError(w, http.StatusNotFound, "Cannot find an active SiddhiApp with name: "+app)
	case errors.As(err, &perr):
		writeSiddhiError(w, http.StatusBadRequest, "Cannot query: "+err.Error())
	case isGroupError(err):
		_, msg := errorStatus(err)
		writeSiddhiError(w, http.StatusServiceUnavailable, msg)
	default:
		writeSiddhiError(w, http.StatusInternalServerError, "Cannot query: "+err.Error())
	}
}

// serveTableQuery answers POST /stores/query when the query writes a table (serveTableWrite)
// or reads one (`from T ...`,
// T a table of the app) and reports whether it did. Tables live in the replicated engine
// state, not in the shared store: a linearizable read is answered by the leader of group 0
// (a follower relays it), a stale one by this replica. With several groups an app that
// writes a table is refused at deploy, so group 0's copy is the only one that matters.
func (s *Server) serveTableQuery(w http.ResponseWriter, r *http.Request, body []byte, c raftnode.Consistency, min []uint64, app, query string, details bool) bool {
	grp := s.groups[0]
	if engine.IsTableWrite(query) {
		s.serveTableWrite(w, r, body, app, query)
		return true
	}
	isTable := false
	if err := grp.Read(r.Context(), raftnode.Stale, 0, func(e fsm.View) { isTable = e.IsTableQuery(app, query) }); err != nil || !isTable {
		return false
	}
	if c == raftnode.Stored {
		writeSiddhiError(w, http.StatusBadRequest, "consistency=stored reads the shared store, which holds no tables: use linearizable or stale")
		return true
	}
	// A node without a replica of group 0 knows the app's tables but not their rows.
	if _, hosted := replicaOf(grp); (c == raftnode.Linearizable || !hosted) && s.relay(w, r, body) {
		return true
	}
	var res *agg.Result
	var qerr error
	err := grp.Read(r.Context(), c, min[0], func(e fsm.View) { res, qerr = e.TableQuery(app, query) })
	if err == nil {
		err = qerr
	}
	var perr *siddhiql.Error
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(res.AppendJSON(nil, details), '\n'))
	case errors.As(err, &perr):
		writeSiddhiError(w, http.StatusBadRequest, "Cannot query: "+err.Error())
	case isGroupError(err):
		_, msg := errorStatus(err)
		writeSiddhiError(w, http.StatusServiceUnavailable, msg)
	default:
		writeSiddhiError(w, http.StatusInternalServerError, "Cannot query: "+err.Error())
	}
	return true
}
