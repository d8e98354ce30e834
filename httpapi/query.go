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
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/siddhiql"
)

// storeQueryRequest is Siddhi's store API request.
type storeQueryRequest struct {
	AppName string `json:"appName"`
	Query   string `json:"query"`
	Details bool   `json:"details"`
}

// siddhiError is Siddhi's store API error body.
type siddhiError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

func writeSiddhiError(w http.ResponseWriter, code int, msg string) {
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, code, siddhiError{Type: "error", Message: msg})
}

// errNoStore: consistency=stored on a node without a shared store.
var errNoStore = errors.New("consistency=stored needs a shared store, and this node has none")

// readOptions reads ?consistency= and ?min_index=. min_index is either one index, for
// group 0 (the only group of a one-group cluster), or a list GROUP:INDEX,GROUP:INDEX as an
// ingest answer's parts give them.
func (s *Server) readOptions(r *http.Request) (raftnode.Consistency, []uint64, error) {
	c, err := raftnode.ParseConsistency(r.URL.Query().Get("consistency"))
	if err != nil {
		return 0, nil, err
	}
	min := make([]uint64, len(s.groups))
	v := r.URL.Query().Get("min_index")
	if v == "" {
		return c, min, nil
	}
	for _, item := range strings.Split(v, ",") {
		gs, is, found := strings.Cut(item, ":")
		if !found {
			gs, is = "0", item
		}
		g, gerr := strconv.Atoi(gs)
		i, ierr := strconv.ParseUint(is, 10, 64)
		if gerr != nil || ierr != nil || g < 0 || g >= len(s.groups) {
			return 0, nil, fmt.Errorf("min_index %q: use INDEX or GROUP:INDEX,GROUP:INDEX with groups 0 to %d", v, len(s.groups)-1)
		}
		if err := s.checkMinIndex(g, i); err != nil {
			return 0, nil, err
		}
		min[g] = i
	}
	return c, min, nil
}

// handleStoreQuery serves Siddhi's POST /stores/query: {"appName","query"} → {"records":[...]}.
func (s *Server) handleStoreQuery(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var req storeQueryRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeSiddhiError(w, http.StatusBadRequest, "malformed JSON request: "+err.Error())
		return
	}
	if strings.TrimSpace(req.Query) == "" {
		writeSiddhiError(w, http.StatusBadRequest, "Query cannot be empty or null")
		return
	}
	if strings.TrimSpace(req.AppName) == "" {
		writeSiddhiError(w, http.StatusBadRequest, "Siddhi app name cannot be empty or null")
		return
	}
	c, min, err := s.readOptions(r)
	if err != nil {
		writeSiddhiError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.serveTableQuery(w, r, body, c, min, req.AppName, req.Query, req.Details) {
		return
	}
	ctx, cancel := s.minIndexContext(r.Context(), min)
	defer cancel()
	res, err := s.query(ctx, c, min, req.AppName, req.Query)
	var timeoutMsg string
	var timedOut bool
	if err != nil {
		timeoutMsg, timedOut = s.minIndexTimeout(r.Context(), err, min)
	}
	switch {
	case errors.Is(err, engine.ErrUnknownApp) && c != raftnode.Stale && s.relay(w, r, body):
		// This node may lag behind a deploy: the leader of group 0 answered.
	case errors.Is(err, engine.ErrUnknownApp):
		writeSiddhiError(w, http.StatusNotFound, "Cannot find an active SiddhiApp with name: "+req.AppName)
	case timedOut:
		writeSiddhiError(w, http.StatusServiceUnavailable, timeoutMsg)
	case isGroupError(err) || errors.Is(err, errNoLeaderAddr):
		_, msg := errorStatus(err)
		if errors.Is(err, errNoLeaderAddr) {
			msg = err.Error()
		}
		writeSiddhiError(w, http.StatusServiceUnavailable, msg)
	case err != nil:
		// A query that does not parse or type-check is the caller's to fix (400); so is
		// whatever says it is permanent. Anything else is this node's failure.
		code, msg := errorStatus(err)
		if errors.Is(err, errNoStore) {
			code = http.StatusBadRequest
		}
		if code == http.StatusInternalServerError {
			s.logger.Error("store query failed", "app", req.AppName, "err", err)
			msg = "Cannot query: " + msg
		}
		writeSiddhiError(w, code, msg)
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(res.AppendJSON(nil, req.Details), '\n'))
	}
}

// query answers a store query over every group: each group's in-memory rows (read on its
// leader, or on the local replica with consistency=stale), merged with the shared store's
// rows of every shard, then re-aggregated as one.
func (s *Server) query(ctx context.Context, c raftnode.Consistency, min []uint64, app, q string) (*agg.Result, error) {
	plans := make([]*agg.Plan, len(s.groups))
	rows := make([][]agg.ShardRow, len(s.groups))
	errs := make([]error, len(s.groups))
	var wg sync.WaitGroup
	for g := range s.groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			plans[g], rows[g], errs[g] = s.groupRows(ctx, g, c, min[g], app, q)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		// A query error (bad query, unknown app) is the same in every group: report one.
		for _, e := range errs {
			if e != nil && !isGroupError(e) && !errors.Is(e, errNoLeaderAddr) {
				return nil, e
			}
		}
		return nil, err
	}
	plan := plans[0]
	if c == raftnode.Stored && s.store == nil {
		return nil, errNoStore
	}
	var stored []agg.ShardRow
	if s.store != nil {
		var err error
		if stored, err = s.store.Read(ctx, plan.Def, plan.Per, plan.Start, plan.End); err != nil {
			return nil, fmt.Errorf("%w: %w", raftnode.ErrStoreRead, err)
		}
	}
	return plan.Run(agg.Newest(append([][]agg.ShardRow{stored}, rows...)...))
}

// groupRows plans q on group g's local replica and collects the group's in-memory rows: from
// the local replica for stale and stored reads or when it leads, else from the leader.
func (s *Server) groupRows(ctx context.Context, g int, c raftnode.Consistency, min uint64, app, q string) (*agg.Plan, []agg.ShardRow, error) {
	grp := s.groups[g]
	if c != raftnode.Linearizable || grp.IsLeader() {
		plan, rows, err := grp.MemoryRows(ctx, c, min, app, q)
		if !errors.Is(err, raftnode.ErrNotLeader) {
			return plan, rows, err
		}
	}
	plan, _, err := grp.MemoryRows(ctx, raftnode.Stored, 0, app, q) // the plan only
	if err != nil {
		return nil, nil, err
	}
	body, _ := json.Marshal(storeQueryRequest{AppName: app, Query: q})
	query := url.Values{"consistency": {"linearizable"}, "min_index": {strconv.FormatUint(min, 10)}}
	resp, err := s.call(ctx, g, http.MethodPost, "/v1/internal/rows", query, http.Header{}, body)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("read rows of group %d: %w", g, err)
	}
	if resp.StatusCode != http.StatusOK {
		var ae apiError
		_ = json.Unmarshal(b, &ae)
		if resp.StatusCode == http.StatusServiceUnavailable {
			return nil, nil, fmt.Errorf("%w: group %d: %s", raftnode.ErrNoLeader, g, ae.Error)
		}
		return nil, nil, fmt.Errorf("group %d: %s", g, ae.Error)
	}
	rows, err := plan.Def.DecodeShardRows(wire.NewReader(b))
	return plan, rows, err
}

// handleRows serves another node's query: the in-memory rows of one group this node leads,
// read linearizably, in the binary form agg.EncodeShardRows writes.
func (s *Server) handleRows(w http.ResponseWriter, r *http.Request) {
	g, present, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	if !present {
		writeError(w, http.StatusBadRequest, "group is required")
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var req storeQueryRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed rows request: "+err.Error())
		return
	}
	c, min, err := s.readOptions(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := s.minIndexContext(r.Context(), min[:1])
	defer cancel()
	_, rows, err := s.groups[g].MemoryRows(ctx, c, min[0], req.AppName, req.Query)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
			writeUnavailable(w, fmt.Sprintf("waited %s (--max-wait) for index %d of group %d (this replica has applied %d)",
				s.cfg.Limits.withDefaults().MaxWait, min[0], g, s.groups[g].Status().AppliedIndex))
			return
		}
		s.groupError(w, err)
		return
	}
	var wr wire.Writer
	agg.EncodeShardRows(&wr, rows)
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(wr.Buf)
}

// handleAggregation serves GET /v1/aggregations/{name}?within=START,END&per=hours
// [&app=A][&select=...][&on=...]: a store query in query parameters, answered as objects.
func (s *Server) handleAggregation(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	qp := r.URL.Query()
	within, per := qp.Get("within"), qp.Get("per")
	if within == "" || per == "" {
		writeError(w, http.StatusBadRequest, "within and per are required: ?within=1514764800000,1514851200000&per=hours (or within=2018-01-01 **:**:**)")
		return
	}
	c, min, err := s.readOptions(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	app := qp.Get("app")
	if app == "" {
		var apps []string
		if err := s.groups[0].Read(r.Context(), raftnode.Stale, 0, func(e fsm.View) {
			for _, a := range e.Apps() {
				if _, ok := a.Aggregation(name); ok {
					apps = append(apps, a.Name())
				}
			}
		}); err != nil {
			s.groupError(w, err)
			return
		}
		switch len(apps) {
		case 0:
			writeError(w, http.StatusNotFound, fmt.Sprintf("no deployed app defines aggregation %q", name))
			return
		case 1:
			app = apps[0]
		default:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("aggregation %q is in several apps (%s): say which with app=", name, strings.Join(apps, ", ")))
			return
		}
	}
	q := buildStoreQuery(name, within, per, qp.Get("on"), qp.Get("select"))
	ctx, cancel := s.minIndexContext(r.Context(), min)
	defer cancel()
	res, err := s.query(ctx, c, min, app, q)
	var timeoutMsg string
	var timedOut bool
	if err != nil {
		timeoutMsg, timedOut = s.minIndexTimeout(r.Context(), err, min)
	}
	switch {
	case errors.Is(err, engine.ErrUnknownApp):
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown app %q", app))
	case timedOut:
		writeUnavailable(w, timeoutMsg)
	case isGroupError(err) || errors.Is(err, errNoLeaderAddr):
		writeUnavailable(w, err.Error())
	case err != nil:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%v (query: %s)", err, q))
	default:
		attrs := make([]siddhiql.Attribute, len(res.Columns))
		for i, c := range res.Columns {
			attrs[i] = siddhiql.Attribute{Name: c.Name, Type: c.Type}
		}
		b := []byte(`{"records":[`)
		for i, row := range res.Rows {
			if i > 0 {
				b = append(b, ',')
			}
			b = expr.AppendJSONObject(b, attrs, row)
		}
		b = append(b, "]}\n"...)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
}

var integer = regexp.MustCompile(`^-?[0-9]+$`)

// buildStoreQuery turns the query parameters into SiddhiQL.
func buildStoreQuery(name, within, per, on, sel string) string {
	var b bytes.Buffer
	b.WriteString("from " + name)
	if on != "" {
		b.WriteString(" on " + on)
	}
	b.WriteString(" within ")
	for i, v := range strings.SplitN(within, ",", 2) {
		if i > 0 {
			b.WriteString(", ")
		}
		v = strings.TrimSpace(v)
		if integer.MatchString(v) {
			b.WriteString(v + "L")
		} else {
			b.WriteString(strconv.Quote(v))
		}
	}
	b.WriteString(" per " + strconv.Quote(per))
	if sel == "" {
		sel = "*"
	}
	b.WriteString(" select " + sel)
	return b.String()
}
