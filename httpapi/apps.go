package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/partition"
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
	// SHA256 is the hash of the text as deployed (with ?text=true): the cluster map's
	// reconciler compares it with the map's.
	SHA256 string `json:"sha256,omitempty"`
}

// GroupOutcome is one group's answer to an operation that every group must apply (deploy,
// undeploy, join, remove).
type GroupOutcome struct {
	Group  int    `json:"group"`
	Status int    `json:"status"`
	Index  uint64 `json:"index,omitempty"`
	Error  string `json:"error,omitempty"`
}

// fanOut runs an operation on the given groups, concurrently: local runs it on this node's
// replica when it leads the group; otherwise the request goes to the group's leader with
// ?group=, unless r itself was forwarded (then 503: leadership moved on the way). It returns
// the outcomes by group and the status to answer: 2xx when all succeeded, else the most
// telling failure (4xx before 503).
func (s *Server) fanOut(r *http.Request, method, path string, body []byte, groups []int, local func(g int) GroupOutcome) ([]GroupOutcome, int) {
	ctx := r.Context()
	forwarded := r.Header.Get(forwardedHeader) != ""
	out := make([]GroupOutcome, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.groups[g].IsLeader() {
				if o := local(g); o.Status != 0 {
					out[i] = o
					return
				}
			}
			if forwarded {
				out[i] = GroupOutcome{Group: g, Status: http.StatusServiceUnavailable, Error: "leadership moved while the request was forwarded; retry"}
				return
			}
			out[i] = s.remote(ctx, g, method, path, body)
		}()
	}
	wg.Wait()
	code := 0
	for _, o := range out {
		switch {
		case o.Status >= 300 && o.Status < 500 && (code == 0 || code < 300 || code >= 500):
			code = o.Status
		case o.Status >= 500 && (code == 0 || code < 300):
			code = o.Status
		case code == 0:
			code = o.Status
		}
	}
	return out, code
}

// remote runs an operation on group g's leader.
func (s *Server) remote(ctx context.Context, g int, method, path string, body []byte) GroupOutcome {
	o := GroupOutcome{Group: g}
	resp, err := s.call(ctx, g, method, path, nil, http.Header{"Content-Type": {"application/json"}}, body)
	if err != nil {
		o.Status, o.Error = http.StatusServiceUnavailable, err.Error()
		return o
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var v struct {
		Index uint64 `json:"index"`
		Error string `json:"error"`
	}
	_ = json.Unmarshal(b, &v)
	o.Status, o.Index, o.Error = resp.StatusCode, v.Index, v.Error
	return o
}

// allGroups lists every group ID.
func (s *Server) allGroups() []int {
	gs := make([]int, len(s.groups))
	for i := range gs {
		gs[i] = i
	}
	return gs
}

// answerFanOut writes the outcome of a fan-out.
func answerFanOut(w http.ResponseWriter, code int, out []GroupOutcome, extra map[string]any) {
	body := map[string]any{"groups": out}
	for k, v := range extra {
		body[k] = v
	}
	if len(out) > 0 && out[0].Index != 0 {
		body["index"] = out[0].Index
	}
	if code >= 300 {
		var msgs []string
		for _, o := range out {
			if o.Status >= 300 {
				msgs = append(msgs, fmt.Sprintf("group %d: %s", o.Group, o.Error))
			}
		}
		body["error"] = strings.Join(msgs, "; ")
		if code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
	}
	writeJSON(w, code, body)
}

// handleDeploy deploys an app to every group (or the one ?group= names). With a cluster map
// the app is checked and recorded in the map first (recordApp), so a group that misses it
// gets it from the controller later. Deploying the same text again changes nothing, so a
// partly failed deploy is simply retried.
func (s *Server) handleDeploy(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	if strings.TrimSpace(string(body)) == "" {
		writeError(w, http.StatusBadRequest, "the request body must be the SiddhiQL text of the app")
		return
	}
	g, present, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	app, err := siddhiql.Parse(string(body))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := siddhiql.CheckAppLimits(string(body), app); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := checkAppName(app.Name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := partition.CheckApp(app, len(s.groups)); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if code, msg := s.recordApp(r, true, string(body)); code != 0 {
		writeAppError(w, code, msg)
		return
	}
	groups := s.allGroups()
	if present {
		groups = []int{g}
	}
	// Every group that answers names the same app: the parse above already knows it.
	name := app.Name
	out, code := s.fanOut(r, http.MethodPost, "/v1/apps", body, groups, func(g int) GroupOutcome {
		_, index, err := s.groups[g].Deploy(r.Context(), string(body))
		if errors.Is(err, raftnode.ErrNotLeader) {
			return GroupOutcome{}
		}
		return outcome(g, index, err, http.StatusCreated)
	})
	if present && out[0].Status != http.StatusCreated && r.Header.Get(forwardedHeader) != "" {
		writeError(w, out[0].Status, out[0].Error)
		return
	}
	notes := siddhiql.Notes(app)
	if code == http.StatusCreated {
		s.logger.Info("app deployed", "app", app.Name, "groups", len(groups))
		for _, n := range notes {
			s.logger.Info("app note", "app", app.Name, "note", n)
		}
	}
	extra := map[string]any{"name": name}
	if len(notes) > 0 {
		extra["notes"] = notes
	}
	answerFanOut(w, code, out, extra)
}

// maxAppName bounds an app name, in bytes.
const maxAppName = 128

// checkAppName refuses an app name that is not an identifier: letters, digits, '_', '-'
// and '.', not starting with '-' or '.', valid UTF-8, at most maxAppName bytes. The name is
// a path segment of /v1/apps/{name}, so '/' or NUL would make an app that cannot be
// removed. An empty name is left to the engine, which asks for @app:name.
func checkAppName(name string) error {
	const rule = "an app name is letters, digits, '_', '-' and '.', not starting with '-' or '.', at most 128 bytes"
	switch {
	case name == "":
		return nil
	case len(name) > maxAppName:
		return fmt.Errorf("app name is %d bytes: %s", len(name), rule)
	case !utf8.ValidString(name):
		return fmt.Errorf("app name %q is not valid UTF-8: %s", name, rule)
	case name[0] == '-' || name[0] == '.':
		return fmt.Errorf("app name %q starts with %q: %s", name, name[:1], rule)
	}
	for _, c := range name {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && c != '_' && c != '-' && c != '.' {
			return fmt.Errorf("app name %q holds %q: %s", name, c, rule)
		}
	}
	return nil
}

// outcome turns a local operation's result into a GroupOutcome.
func outcome(g int, index uint64, err error, okStatus int) GroupOutcome {
	if err == nil {
		return GroupOutcome{Group: g, Status: okStatus, Index: index}
	}
	code, msg := errorStatus(err)
	if errors.Is(err, store.ErrIncompatibleTable) || errors.Is(err, store.ErrLimit) || errors.Is(err, raftnode.ErrAppRefused) {
		code = http.StatusBadRequest
	}
	return GroupOutcome{Group: g, Status: code, Index: index, Error: msg}
}

// handleListApps lists the apps group 0 (or the group ?group= names) runs, as this node's
// replica has them; on a node without one, the cluster map's apps.
func (s *Server) handleListApps(w http.ResponseWriter, r *http.Request) {
	g, present, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	if _, hosted := replicaOf(s.groups[g]); present && !hosted {
		// Asked of a group's leader (the map's reconciler): only a replica knows what the
		// group runs.
		writeUnavailable(w, fmt.Sprintf("this node holds no replica of group %d", g))
		return
	}
	var apps []AppInfo
	withText := r.URL.Query().Get("text") == "true"
	if err := s.groups[g].Read(r.Context(), raftnode.Stale, 0, func(e fsm.View) {
		for _, a := range e.Apps() {
			info := AppInfo{Name: a.Name(), Queries: len(a.Parsed().Queries), Streams: []string{}, Aggregations: []string{}}
			for _, sd := range a.Parsed().Streams {
				info.Streams = append(info.Streams, sd.Name)
			}
			for _, d := range a.Aggregations() {
				info.Aggregations = append(info.Aggregations, d.Name)
			}
			if withText {
				info.Text = siddhiql.Redact(a.Text()) // the replicated text keeps the secrets
				h := sha256.Sum256([]byte(a.Text()))
				info.SHA256 = hex.EncodeToString(h[:])
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

// handleUndeploy removes an app from every group, and first from the cluster map. An app
// already gone from some groups (a retried removal) counts as removed there.
func (s *Server) handleUndeploy(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	g, present, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	if code, msg := s.recordApp(r, false, name); code != 0 {
		writeAppError(w, code, msg)
		return
	}
	groups := s.allGroups()
	if present {
		groups = []int{g}
	}
	out, code := s.fanOut(r, http.MethodDelete, "/v1/apps/"+url.PathEscape(name), nil, groups, func(g int) GroupOutcome {
		index, err := s.groups[g].Undeploy(r.Context(), name)
		if errors.Is(err, raftnode.ErrNotLeader) {
			return GroupOutcome{}
		}
		return outcome(g, index, err, http.StatusOK)
	})
	if present {
		if out[0].Status == http.StatusOK {
			writeJSON(w, http.StatusOK, map[string]any{"name": name, "index": out[0].Index})
		} else {
			writeError(w, out[0].Status, out[0].Error)
		}
		return
	}
	removed, missing := 0, 0
	for _, o := range out {
		switch o.Status {
		case http.StatusOK:
			removed++
		case http.StatusNotFound:
			missing++
		}
	}
	switch {
	case missing == len(out):
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown app %q", name))
	case removed+missing == len(out):
		s.logger.Info("app removed", "app", name)
		answerFanOut(w, http.StatusOK, out, map[string]any{"name": name})
	default:
		answerFanOut(w, code, out, map[string]any{"name": name})
	}
}
