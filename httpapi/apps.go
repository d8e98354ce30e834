package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/siddhiql"
	"github.com/tally-db/tally/store"
)

// AppInfo describes a deployed app.
type AppInfo struct {
	Name         string   `json:"name"`
	Streams      []string `json:"streams"`
	Aggregations []string `json:"aggregations"`
	Queries      int      `json:"queries"`
	Text         string   `json:"text,omitempty"`
}

func (s *Server) handleDeploy(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	if strings.TrimSpace(string(body)) == "" {
		writeError(w, http.StatusBadRequest, "the request body must be the SiddhiQL text of the app")
		return
	}
	if !s.group.IsLeader() {
		s.forward(w, r, body)
		return
	}
	name, index, err := s.group.Deploy(r.Context(), string(body))
	var perr *siddhiql.Error
	switch {
	case errors.Is(err, raftnode.ErrNotLeader):
		s.forward(w, r, body)
	case errors.As(err, &perr), errors.Is(err, engine.ErrConflict), errors.Is(err, store.ErrIncompatibleTable):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, raftnode.ErrStoreTables):
		writeUnavailable(w, err.Error()) // the store is unreachable: retry later
	case isGroupError(err):
		s.groupError(w, err)
	case err != nil:
		// Engine checks without a position (a missing @app:name, say) are the client's too.
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		s.logger.Info("app deployed", "app", name, "index", index)
		writeJSON(w, http.StatusCreated, map[string]any{"name": name, "index": index})
	}
}

func (s *Server) handleListApps(w http.ResponseWriter, r *http.Request) {
	var apps []AppInfo
	withText := r.URL.Query().Get("text") == "true"
	if err := s.group.Read(r.Context(), raftnode.Stale, 0, func(e *engine.Engine) {
		for _, a := range e.Apps() {
			info := AppInfo{Name: a.Name, Queries: len(a.Parsed.Queries), Streams: []string{}, Aggregations: []string{}}
			for _, sd := range a.Parsed.Streams {
				info.Streams = append(info.Streams, sd.Name)
			}
			for _, d := range a.Aggregations() {
				info.Aggregations = append(info.Aggregations, d.Name)
			}
			if withText {
				info.Text = a.Text
			}
			apps = append(apps, info)
		}
	}); err != nil {
		s.groupError(w, err)
		return
	}
	if apps == nil {
		apps = []AppInfo{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"apps": apps})
}

func (s *Server) handleUndeploy(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if !s.group.IsLeader() {
		s.forward(w, r, nil)
		return
	}
	index, err := s.group.Undeploy(r.Context(), name)
	switch {
	case errors.Is(err, raftnode.ErrNotLeader):
		s.forward(w, r, nil)
	case errors.Is(err, engine.ErrUnknownApp):
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown app %q", name))
	case err != nil:
		s.groupError(w, err)
	default:
		s.logger.Info("app removed", "app", name, "index", index)
		writeJSON(w, http.StatusOK, map[string]any{"name": name, "index": index})
	}
}
