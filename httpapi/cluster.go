package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/tally-db/tally/raftnode"
)

// JoinRequest is the body of POST /v1/cluster/join.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

func (s *Server) handleJoin(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var req JoinRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed join request: "+err.Error())
		return
	}
	if req.ID == "" || req.RaftAddr == "" {
		writeError(w, http.StatusBadRequest, `join needs "id" and "raft_addr"`)
		return
	}
	if !s.group.IsLeader() {
		s.forward(w, r, body)
		return
	}
	err := s.group.Join(r.Context(), req.ID, req.RaftAddr)
	switch {
	case errors.Is(err, raftnode.ErrNotLeader):
		s.forward(w, r, body)
	case isGroupError(err):
		s.groupError(w, err)
	case err != nil:
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "joined", "id": req.ID})
	}
}

func (s *Server) handleRemove(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if !s.group.IsLeader() {
		s.forward(w, r, nil)
		return
	}
	err := s.group.Remove(r.Context(), id)
	switch {
	case errors.Is(err, raftnode.ErrNotLeader):
		s.forward(w, r, nil)
	case err != nil:
		s.groupError(w, err)
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "removed", "id": id})
	}
}

// LeaderInfo names a group's leader.
type LeaderInfo struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
}

// GroupStatus is one group in GET /v1/cluster/status.
type GroupStatus struct {
	ID           uint32            `json:"id"`
	ShardID      string            `json:"shard_id"`
	Role         string            `json:"role"`
	Leader       *LeaderInfo       `json:"leader"`
	Term         uint64            `json:"term"`
	CommitIndex  uint64            `json:"commit_index"`
	AppliedIndex uint64            `json:"applied_index"`
	LastIndex    uint64            `json:"last_index"`
	Members      []raftnode.Member `json:"members"`
}

// ClusterStatus is the body of GET /v1/cluster/status.
type ClusterStatus struct {
	ID     string        `json:"id"`
	Groups []GroupStatus `json:"groups"`
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	st := s.group.Status()
	g := GroupStatus{ID: st.Group, ShardID: st.ShardID, Role: st.Role, Term: st.Term, CommitIndex: st.CommitIndex,
		AppliedIndex: st.AppliedIndex, LastIndex: st.LastIndex, Members: st.Members}
	if st.LeaderRaft != "" {
		g.Leader = &LeaderInfo{ID: st.LeaderID}
		if addr, err := s.res.HTTPAddr(r.Context(), st.LeaderRaft); err == nil {
			g.Leader.HTTPAddr = addr
		}
	}
	if g.Members == nil {
		g.Members = []raftnode.Member{}
	}
	writeJSON(w, http.StatusOK, ClusterStatus{ID: s.cfg.NodeID, Groups: []GroupStatus{g}})
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	if !s.group.Ready() {
		writeUnavailable(w, "not ready: no leader known or still applying the log")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// handleStateHash reports this replica's applied index and the hash of its FSM state at
// that index: replicas of a group at the same index must report the same hash.
func (s *Server) handleStateHash(w http.ResponseWriter, _ *http.Request) {
	idx, h, err := s.group.StateHash()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"group": s.group.Status().Group, "applied_index": idx, "state_hash": h})
}
