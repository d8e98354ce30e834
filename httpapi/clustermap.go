package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tally-db/tally/clustermap"
	"github.com/tally-db/tally/raftnode"
)

// Cluster is the node's view of the cluster map and its controller (node.Node). Register and
// Drain answer raftnode.ErrNotLeader on a node that does not lead the controller group; the
// API then forwards the request to the one that does.
type Cluster interface {
	// Map is this node's copy of the cluster map.
	Map() clustermap.Map
	// ControllerLeader names the controller group's leader ("" when unknown).
	ControllerLeader() (id, raftAddr string)
	// Register adds a node to the cluster (a join): checked on its Raft address, added to
	// the controller group, recorded in the map. Replicas are moved onto it afterwards.
	Register(ctx context.Context, req JoinRequest) error
	// Drain marks a node draining: its replicas move off, then it leaves the map.
	Drain(ctx context.Context, id string) error
}

// appRecorder is a Cluster whose map holds the deployed apps (node.Node): POST and DELETE
// /v1/apps record the change in it before the groups run it.
type appRecorder interface {
	// DeployApp checks an app as the groups will (refusing it with their errors, changing
	// nothing) and records it in the map; it returns the app's name. The groups deploy it
	// afterwards (the caller fans it out; the controller deploys it where it is missing).
	DeployApp(ctx context.Context, text string) (string, error)
	// UndeployApp removes an app from the map (a name it does not hold changes nothing);
	// the groups remove it afterwards.
	UndeployApp(ctx context.Context, name string) error
}

// replicaOf is the replica behind a group when this node hosts one: a node of a cluster with
// a map hands the API one slot per group, empty for groups it holds no replica of.
func replicaOf(g Group) (any, bool) {
	if h, ok := g.(interface{ Replica() (Group, bool) }); ok {
		return h.Replica()
	}
	return g, true
}

// MapResponse is the body of GET /v1/cluster/map.
type MapResponse struct {
	clustermap.Map
	Controller *LeaderInfo `json:"controller"`
}

func (s *Server) handleMap(w http.ResponseWriter, r *http.Request) {
	if s.cluster == nil {
		writeError(w, http.StatusNotFound, "this node runs without a cluster map")
		return
	}
	out := MapResponse{Map: s.cluster.Map()}
	for i := range out.Apps {
		out.Apps[i].Text = "" // names and indexes: the texts carry sink credentials (GET /v1/apps?text=true)
	}
	if id, addr := s.cluster.ControllerLeader(); id != "" {
		out.Controller = &LeaderInfo{ID: id}
		if h, err := s.res.HTTPAddr(r.Context(), addr); err == nil {
			out.Controller.HTTPAddr = h
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleDrain(w http.ResponseWriter, r *http.Request) {
	if s.cluster == nil {
		writeError(w, http.StatusNotFound, "this node runs without a cluster map")
		return
	}
	id := chi.URLParam(r, "id")
	m := s.cluster.Map()
	if _, ok := m.Node(id); !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no node %q in the cluster map", id))
		return
	}
	err := s.cluster.Drain(r.Context(), id)
	if errors.Is(err, raftnode.ErrNotLeader) {
		s.toController(w, r, nil)
		return
	}
	if err != nil {
		s.controllerError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "draining", "id": id})
}

// register is a join without ?group: the node enters the cluster map; the controller moves
// replicas onto it.
func (s *Server) register(w http.ResponseWriter, r *http.Request, req JoinRequest, body []byte) {
	err := s.cluster.Register(r.Context(), req)
	if errors.Is(err, raftnode.ErrNotLeader) {
		s.toController(w, r, body)
		return
	}
	if err != nil {
		s.controllerError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "joined", "id": req.ID})
}

// recordApp records a deploy (text) or an undeploy (name) in the cluster map before the
// groups run it: here when this node leads the controller group, else through its leader
// (POST /v1/internal/apps, DELETE /v1/internal/apps/{name}). A request another node
// forwarded (a fan-out to one group's leader) was recorded by that node. code is 0 when
// the map holds the change (or there is no map), else the status to answer with msg.
//
// Recording is idempotent (the same text again, or a name the map does not hold, changes
// nothing), so a 503 (no controller leader, leadership moving) is retried for up to
// recordRetry before it is answered.
func (s *Server) recordApp(r *http.Request, deploy bool, arg string) (code int, msg string) {
	rec, ok := s.cluster.(appRecorder)
	if !ok || r.Header.Get(forwardedHeader) != "" {
		return 0, ""
	}
	deadline := time.Now().Add(recordRetry)
	for wait := 50 * time.Millisecond; ; wait = min(wait*2, 500*time.Millisecond) {
		code, msg = s.recordOnce(r, rec, deploy, arg)
		if code != http.StatusServiceUnavailable || time.Now().Add(wait).After(deadline) {
			return code, msg
		}
		select {
		case <-r.Context().Done():
			return code, msg
		case <-time.After(wait):
		}
	}
}

// recordRetry bounds how long recordApp retries while the controller has no leader.
const recordRetry = 5 * time.Second

func (s *Server) recordOnce(r *http.Request, rec appRecorder, deploy bool, arg string) (code int, msg string) {
	var err error
	if deploy {
		_, err = rec.DeployApp(r.Context(), arg)
	} else {
		err = rec.UndeployApp(r.Context(), arg)
	}
	if !errors.Is(err, raftnode.ErrNotLeader) {
		return appMapError(err)
	}
	_, raftAddr := s.cluster.ControllerLeader()
	if raftAddr == "" {
		return http.StatusServiceUnavailable, "no controller leader is known right now to record the app in the cluster map; retry shortly"
	}
	addr, err := s.res.HTTPAddr(r.Context(), raftAddr)
	if err != nil {
		return http.StatusServiceUnavailable, "cannot reach the controller leader to record the app in the cluster map: " + err.Error()
	}
	method, path, body := http.MethodPost, "/v1/internal/apps", []byte(arg)
	if !deploy {
		method, path, body = http.MethodDelete, "/v1/internal/apps/"+url.PathEscape(arg), nil
	}
	resp, err := s.send(r.Context(), method, s.scheme+"://"+addr+path, http.Header{"Content-Type": {"text/plain"}}, body)
	if err != nil {
		return http.StatusServiceUnavailable, "recording the app in the cluster map through the controller leader failed: " + err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return 0, ""
	}
	var e apiError
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(b, &e) != nil || e.Error == "" {
		e.Error = fmt.Sprintf("the controller leader answered %d: %s", resp.StatusCode, b)
	}
	return resp.StatusCode, e.Error
}

// appMapError is the status and message of a failure to record an app in the map: the
// groups' own refusals (outcome) as they would answer them, the map's as 400, not knowing
// the controller's leader as 503.
func appMapError(err error) (int, string) {
	switch {
	case err == nil:
		return 0, ""
	case errors.Is(err, raftnode.ErrNotLeader), errors.Is(err, raftnode.ErrNoLeader), errors.Is(err, raftnode.ErrUnknownOutcome):
		return http.StatusServiceUnavailable, "cluster map: " + err.Error() + "; retry"
	case errors.Is(err, clustermap.ErrRefused):
		return http.StatusBadRequest, err.Error()
	}
	o := outcome(0, 0, err, 0)
	return o.Status, o.Error
}

// handleRecordApp records an app in the map, on the controller's leader (for recordApp).
func (s *Server) handleRecordApp(w http.ResponseWriter, r *http.Request) {
	s.recordHere(w, r, true)
}

// handleForgetApp removes an app from the map, on the controller's leader (for recordApp).
func (s *Server) handleForgetApp(w http.ResponseWriter, r *http.Request) {
	s.recordHere(w, r, false)
}

func (s *Server) recordHere(w http.ResponseWriter, r *http.Request, deploy bool) {
	rec, ok := s.cluster.(appRecorder)
	if !ok {
		writeError(w, http.StatusNotFound, "this node runs without a cluster map of apps")
		return
	}
	arg := chi.URLParam(r, "name")
	if deploy {
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		arg = string(body)
	}
	var err error
	if deploy {
		arg, err = rec.DeployApp(r.Context(), arg)
	} else {
		err = rec.UndeployApp(r.Context(), arg)
	}
	if errors.Is(err, raftnode.ErrNotLeader) {
		writeUnavailable(w, "this node no longer leads the controller group; retry")
		return
	}
	if code, msg := appMapError(err); code != 0 {
		writeAppError(w, code, msg)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"name": arg})
}

// writeAppError answers a failure to record an app.
func writeAppError(w http.ResponseWriter, code int, msg string) {
	if code == http.StatusServiceUnavailable {
		writeUnavailable(w, msg)
		return
	}
	writeError(w, code, msg)
}

func (s *Server) controllerError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, raftnode.ErrJoinCheck), errors.Is(err, clustermap.ErrRefused):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, raftnode.ErrMemberElsewhere), errors.Is(err, raftnode.ErrAddrInUse):
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeUnavailable(w, "cluster map: "+err.Error())
	}
}

// toController relays the request to the controller group's leader (once: a forwarded
// request is not forwarded again).
func (s *Server) toController(w http.ResponseWriter, r *http.Request, body []byte) {
	_, raftAddr := s.cluster.ControllerLeader()
	if r.Header.Get(forwardedHeader) != "" || raftAddr == "" {
		writeUnavailable(w, "no controller leader is known right now; retry shortly")
		return
	}
	addr, err := s.res.HTTPAddr(r.Context(), raftAddr)
	if err != nil {
		writeUnavailable(w, "cannot reach the controller leader: "+err.Error())
		return
	}
	target := s.scheme + "://" + addr + r.URL.Path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	resp, err := s.send(r.Context(), r.Method, target, r.Header, body)
	if err != nil {
		writeUnavailable(w, "forwarding to the controller leader failed: "+err.Error())
		return
	}
	defer resp.Body.Close()
	relayResponse(w, resp)
}

func relayResponse(w http.ResponseWriter, resp *http.Response) {
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// GroupCall sends a request, as this node, to the leader of group g (?group=g added) and
// returns its status and body. The node's controller uses it to carry out moves.
func (s *Server) GroupCall(ctx context.Context, g int, method, path string, query url.Values, body []byte) (int, []byte, error) {
	resp, err := s.call(ctx, g, method, path, query, http.Header{"Content-Type": {"application/json"}}, body)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, b, err
}

// NodeCall sends a request, as this node, to the node at HTTP address addr.
func (s *Server) NodeCall(ctx context.Context, method, addr, path string, body []byte) (int, []byte, error) {
	resp, err := s.send(ctx, method, s.scheme+"://"+addr+path, http.Header{"Content-Type": {"application/json"}}, body)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, b, err
}
