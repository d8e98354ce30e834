package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/engine/expr"
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
	writeJSON(w, code, siddhiError{Type: "error", Message: msg})
}

// readOptions reads ?consistency= and ?min_index=.
func readOptions(r *http.Request) (raftnode.Consistency, uint64, error) {
	c, err := raftnode.ParseConsistency(r.URL.Query().Get("consistency"))
	if err != nil {
		return 0, 0, err
	}
	var min uint64
	if v := r.URL.Query().Get("min_index"); v != "" {
		if min, err = strconv.ParseUint(v, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("min_index %q is not an unsigned integer", v)
		}
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
	c, min, err := readOptions(r)
	if err != nil {
		writeSiddhiError(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := s.query(r, c, min, req.AppName, req.Query)
	switch {
	case errors.Is(err, raftnode.ErrNotLeader):
		s.forward(w, r, body)
	case errors.Is(err, engine.ErrUnknownApp):
		writeSiddhiError(w, http.StatusNotFound, "Cannot find an active SiddhiApp with name: "+req.AppName)
	case isGroupError(err):
		s.groupError(w, err)
	case err != nil:
		writeSiddhiError(w, http.StatusInternalServerError, "Cannot query: "+err.Error())
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(res.AppendJSON(nil, req.Details), '\n'))
	}
}

func isGroupError(err error) bool {
	return errors.Is(err, raftnode.ErrNoLeader) || errors.Is(err, raftnode.ErrUnknownOutcome) || errors.Is(err, raftnode.ErrClosed) ||
		errors.Is(err, raftnode.ErrBacklog) || errors.Is(err, raftnode.ErrStoreRead) || errors.Is(err, context.DeadlineExceeded)
}

// query runs a store query against the local replica at consistency c.
func (s *Server) query(r *http.Request, c raftnode.Consistency, min uint64, app, q string) (*agg.Result, error) {
	return s.group.Query(r.Context(), c, min, app, q)
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
	c, min, err := readOptions(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	app := qp.Get("app")
	if app == "" {
		var apps []string
		if err := s.group.Read(r.Context(), raftnode.Stale, 0, func(e *engine.Engine) {
			for _, a := range e.Apps() {
				if _, ok := a.Aggregation(name); ok {
					apps = append(apps, a.Name)
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
	res, err := s.query(r, c, min, app, q)
	switch {
	case errors.Is(err, raftnode.ErrNotLeader):
		s.forward(w, r, nil)
	case errors.Is(err, engine.ErrUnknownApp):
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown app %q", app))
	case isGroupError(err):
		s.groupError(w, err)
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
	var b strings.Builder
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
