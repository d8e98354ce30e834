package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

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
