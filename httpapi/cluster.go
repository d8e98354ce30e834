package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/tally-db/tally/raftnode"
)

// JoinRequest is the body of POST /v1/cluster/join. Groups lists the groups the node hosts
// replicas of; empty means all.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Groups   []int  `json:"groups,omitempty"`
	// Zone is the node's zone label (tally serve --zone): placement spreads each group's
	// replicas over zones.
	Zone string `json:"zone,omitempty"`
}

func (s *Server) handleJoin(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var req JoinRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "malformed join request: "+err.Error())
		return
	}
	if req.ID == "" || req.RaftAddr == "" {
		writeError(w, http.StatusBadRequest, `join needs "id" and "raft_addr"`)
		return
	}
	g, present, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	if s.cluster != nil && !present && len(req.Groups) == 0 {
		s.register(w, r, req, body)
		return
	}
	groups := req.Groups
	if len(groups) == 0 {
		groups = s.allGroups()
	}
	for _, x := range groups {
		if x < 0 || x >= len(s.groups) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("group %d: this cluster has groups 0 to %d", x, len(s.groups)-1))
			return
		}
	}
	if present {
		groups = []int{g}
	}
	out, code := s.fanOut(r, http.MethodPost, "/v1/cluster/join", body, groups, func(g int) GroupOutcome {
		err := s.groups[g].Join(r.Context(), req.ID, req.RaftAddr)
		if errors.Is(err, raftnode.ErrNotLeader) {
			return GroupOutcome{}
		}
		if errors.Is(err, raftnode.ErrJoinCheck) {
			// The node does not answer on its Raft address, or is another node.
			return GroupOutcome{Group: g, Status: http.StatusBadRequest, Error: err.Error()}
		}
		if err != nil && !isGroupError(err) {
			// ErrMemberElsewhere, ErrAddrInUse: the configuration has another view of
			// this node or address.
			return GroupOutcome{Group: g, Status: http.StatusConflict, Error: err.Error()}
		}
		return outcome(g, 0, err, http.StatusOK)
	})
	answerFanOut(w, code, out, map[string]any{"status": map[bool]string{true: "joined", false: "not joined"}[code == http.StatusOK], "id": req.ID})
}

func (s *Server) handleRemove(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	g, present, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	groups := s.allGroups()
	if present {
		groups = []int{g}
	}
	out, code := s.fanOut(r, http.MethodDelete, "/v1/cluster/nodes/"+url.PathEscape(id), nil, groups, func(g int) GroupOutcome {
		err := s.groups[g].Remove(r.Context(), id)
		if errors.Is(err, raftnode.ErrNotLeader) {
			return GroupOutcome{}
		}
		return outcome(g, 0, err, http.StatusOK)
	})
	answerFanOut(w, code, out, map[string]any{"status": map[bool]string{true: "removed", false: "not removed"}[code == http.StatusOK], "id": id})
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
	Lag          uint64            `json:"lag"`
	Members      []raftnode.Member `json:"members"`
	// LogStore is the replica's Raft log store (raftnode.LogStoreWAL or LogStoreBolt);
	// empty where this node hosts no replica of the group.
	LogStore string `json:"log_store,omitempty"`
}

// ClusterStatus is the body of GET /v1/cluster/status.
type ClusterStatus struct {
	ID     string        `json:"id"`
	Groups []GroupStatus `json:"groups"`
	// GeoIPSHA256 identifies the node's GeoIP database (every node needs the same one).
	GeoIPSHA256 string `json:"geoip_sha256,omitempty"`
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	out := ClusterStatus{ID: s.cfg.NodeID, Groups: make([]GroupStatus, 0, len(s.groups)), GeoIPSHA256: s.cfg.GeoIPSHA256}
	for _, grp := range s.groups {
		st := grp.Status()
		g := GroupStatus{ID: st.Group, ShardID: st.ShardID, Role: st.Role, Term: st.Term, CommitIndex: st.CommitIndex,
			AppliedIndex: st.AppliedIndex, LastIndex: st.LastIndex, Members: st.Members, LogStore: st.LogStore}
		if st.CommitIndex > st.AppliedIndex {
			g.Lag = st.CommitIndex - st.AppliedIndex
		}
		if st.LeaderRaft != "" {
			g.Leader = &LeaderInfo{ID: st.LeaderID}
			if addr, err := s.res.HTTPAddr(r.Context(), st.LeaderRaft); err == nil {
				g.Leader.HTTPAddr = addr
			}
		}
		if g.Members == nil {
			g.Members = []raftnode.Member{}
		}
		out.Groups = append(out.Groups, g)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	for i, grp := range s.groups {
		if !grp.Ready() {
			writeUnavailable(w, fmt.Sprintf("not ready: group %d has no leader known or is still applying its log", i))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// handleStateHash reports, per group, this replica's applied index and the hash of its FSM
// state at that index: replicas of a group at the same index must report the same hash. The
// top-level fields are those of ?group= (default 0).
func (s *Server) handleStateHash(w http.ResponseWriter, r *http.Request) {
	g, _, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	type entry struct {
		Group        int    `json:"group"`
		AppliedIndex uint64 `json:"applied_index"`
		StateHash    string `json:"state_hash"`
	}
	all := []entry{}
	var top *entry
	for i := range s.groups {
		if _, hosted := replicaOf(s.groups[i]); !hosted {
			continue // no replica here: nothing to hash
		}
		idx, h, err := s.stateHash(i)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		all = append(all, entry{i, idx, h})
		if i == g {
			top = &all[len(all)-1]
		}
	}
	if top == nil {
		writeError(w, http.StatusMisdirectedRequest, fmt.Sprintf("this node holds no replica of group %d", g))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"group": g, "applied_index": top.AppliedIndex, "state_hash": top.StateHash, "groups": all})
}
