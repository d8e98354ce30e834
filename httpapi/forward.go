package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// forwardedHeader marks a request one node forwarded to the leader; a forwarded request is
// never forwarded again, so a leadership change cannot make requests loop.
const forwardedHeader = "X-Tally-Forwarded"

// forwardHeaders are the request headers a forwarded request keeps.
var forwardHeaders = []string{"Content-Type", "Producer-Id", "Producer-Seq", "Accept"}

type forgetter interface{ Forget(raftAddr string) }

// forward answers a request that needs the leader: a 307 to the leader with
// ?redirect=true, else the leader's own answer, relayed.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Header.Get(forwardedHeader) != "" {
		writeUnavailable(w, "leadership moved while the request was forwarded; retry")
		return
	}
	st := s.group.Status()
	if st.LeaderRaft == "" {
		writeUnavailable(w, "no leader is known for the group right now; retry shortly")
		return
	}
	addr, err := s.res.HTTPAddr(r.Context(), st.LeaderRaft)
	if err != nil {
		writeUnavailable(w, fmt.Sprintf("cannot reach the leader %s: %v", st.LeaderID, err))
		return
	}
	target := "http://" + addr + r.URL.RequestURI()
	if r.URL.Query().Get("redirect") == "true" {
		w.Header().Set("Location", target)
		writeJSON(w, http.StatusTemporaryRedirect, map[string]string{"leader": st.LeaderID, "location": target})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ForwardTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, target, bytes.NewReader(body))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	for _, h := range forwardHeaders {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(forwardedHeader, s.cfg.NodeID)
	resp, err := s.client.Do(req)
	if err != nil {
		if f, ok := s.res.(forgetter); ok {
			f.Forget(st.LeaderRaft)
		}
		// The leader may have applied the request before the connection broke.
		writeUnavailable(w, fmt.Sprintf("forwarding to the leader %s failed: %v; retry with the same Producer-Id and Producer-Seq", st.LeaderID, err))
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Retry-After", "Location"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set("X-Tally-Leader", st.LeaderID)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// readBody reads the whole request body, answering 413 past the limit. ok is false when
// the response has been written.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the %d-byte limit", s.cfg.MaxBodyBytes))
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "read request body: "+err.Error())
		return nil, false
	}
	return body, true
}
