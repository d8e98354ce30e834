package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tally-db/tally/raftnode"
)

// TransferTimeout bounds how long POST /v1/cluster/transfer waits for the new leader.
const TransferTimeout = 10 * time.Second

// TransferResponse is the answer of POST /v1/cluster/transfer: the group and its new leader.
type TransferResponse struct {
	Group  int    `json:"group"`
	Leader string `json:"leader"`
}

// handleTransfer hands the leadership of ?group= (optional with one group) to ?to= (any
// voter when absent) and answers the new leader once known. A node that does not lead the
// group forwards the request to the leader (or answers 307 with ?redirect=true).
func (s *Server) handleTransfer(w http.ResponseWriter, r *http.Request) {
	g, present, ok := s.groupParam(w, r)
	if !ok {
		return
	}
	if !present && len(s.groups) > 1 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("transfer needs ?group=G: this cluster has groups 0 to %d", len(s.groups)-1))
		return
	}
	to := r.URL.Query().Get("to")
	grp := s.groups[g]
	if !grp.IsLeader() {
		s.forward(w, r, g, nil)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), TransferTimeout)
	defer cancel()
	leader, err := grp.Transfer(ctx, to)
	if errors.Is(err, raftnode.ErrNotLeader) {
		s.forward(w, r, g, nil)
		return
	}
	if err != nil {
		s.groupError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, TransferResponse{Group: g, Leader: leader})
}
