package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// forwardedHeader marks a request one node sent to a group's leader; a forwarded request is
// never forwarded again, so a leadership change cannot make requests loop.
const forwardedHeader = "X-Tally-Forwarded"

// forwardHeaders are the request headers a forwarded request keeps.
var forwardHeaders = []string{"Content-Type", "Producer-Id", "Producer-Seq", "Accept"}

type forgetter interface{ Forget(raftAddr string) }

// leaderFinder is a group that can look its leader up on demand (node's stand-in for a
// group hosted elsewhere).
type leaderFinder interface {
	FindLeader(ctx context.Context) (id, raftAddr string)
}

// errNoLeaderAddr: the group's leader is unknown or unreachable.
var errNoLeaderAddr = errors.New("no leader is known for the group right now; retry shortly")

// leaderAddr is the HTTP address of group g's leader and its Raft address.
func (s *Server) leaderAddr(ctx context.Context, g int) (httpAddr, raftAddr, id string, err error) {
	st := s.groups[g].Status()
	if st.LeaderRaft == "" {
		// A group this node holds no replica of (or one still being added) learns its
		// leader from the group's voters: ask them now rather than fail.
		if f, ok := s.groups[g].(leaderFinder); ok {
			st.LeaderID, st.LeaderRaft = f.FindLeader(ctx)
		}
	}
	if st.LeaderRaft == "" {
		return "", "", "", errNoLeaderAddr
	}
	addr, err := s.res.HTTPAddr(ctx, st.LeaderRaft)
	if err != nil {
		return "", "", "", fmt.Errorf("cannot reach the leader %s of group %d: %w", st.LeaderID, g, err)
	}
	return addr, st.LeaderRaft, st.LeaderID, nil
}

// call sends a request to group g's leader with ?group=g added to query, marked as
// forwarded. The caller closes the response body.
func (s *Server) call(ctx context.Context, g int, method, path string, query url.Values, header http.Header, body []byte) (*http.Response, error) {
	addr, raftAddr, _, err := s.leaderAddr(ctx, g)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("group", strconv.Itoa(g))
	resp, err := s.send(ctx, method, s.scheme+"://"+addr+path+"?"+q.Encode(), header, body)
	if err != nil {
		if f, ok := s.res.(forgetter); ok {
			f.Forget(raftAddr)
		}
		return nil, fmt.Errorf("forwarding to the leader of group %d failed: %w", g, err)
	}
	return resp, nil
}

// send makes a request to another node, keeping forwardHeaders, marking it forwarded and
// naming the user it acts for (from ctx) with this node's credentials.
func (s *Server) send(ctx context.Context, method, target string, header http.Header, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for _, h := range forwardHeaders {
		if v := header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(forwardedHeader, s.cfg.NodeID)
	s.nodeRequest(ctx, req)
	return s.client.Do(req)
}

// relay passes a whole request, unchanged, to the leader of group 0 and relays its answer.
// A node whose replicas lag (just restarted, say) may not know an app or stream the cluster
// already has; the leader's view is current. ok is false when the request was already
// forwarded (the caller then answers from its own view).
func (s *Server) relay(w http.ResponseWriter, r *http.Request, body []byte) (ok bool) {
	if r.Header.Get(forwardedHeader) != "" || s.groups[0].IsLeader() {
		return false
	}
	addr, _, _, err := s.leaderAddr(r.Context(), 0)
	if err != nil {
		writeUnavailable(w, "this node is catching up and "+err.Error())
		return true
	}
	resp, err := s.send(r.Context(), r.Method, s.scheme+"://"+addr+r.URL.RequestURI(), r.Header, body)
	if err != nil {
		writeUnavailable(w, "this node is catching up and the leader cannot be reached: "+err.Error())
		return true
	}
	defer resp.Body.Close()
	copyResponse(w, resp)
	return true
}

// copyResponse relays a forwarded request's answer.
func copyResponse(w http.ResponseWriter, resp *http.Response) {
	for _, h := range []string{"Content-Type", "Retry-After", "Location"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// forward answers a request for group g that needs its leader: a 307 to the leader with
// ?redirect=true, else the leader's own answer, relayed. A request that was already
// forwarded gets 503 instead: leadership moved on the way.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, g int, body []byte) {
	if r.Header.Get(forwardedHeader) != "" {
		writeUnavailable(w, "leadership moved while the request was forwarded; retry")
		return
	}
	if r.URL.Query().Get("redirect") == "true" {
		s.redirect(w, r, g)
		return
	}
	q := r.URL.Query()
	q.Del("group")
	resp, err := s.call(r.Context(), g, r.Method, r.URL.Path, q, r.Header, body)
	if err != nil {
		// The leader may have applied the request before the connection broke.
		writeUnavailable(w, err.Error()+"; retry with the same Producer-Id and Producer-Seq")
		return
	}
	defer resp.Body.Close()
	copyResponse(w, resp)
}

// redirect answers 307 to group g's leader, the request's URL on the leader's address.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, g int) {
	addr, _, id, err := s.leaderAddr(r.Context(), g)
	if err != nil {
		writeUnavailable(w, err.Error())
		return
	}
	target := s.scheme + "://" + addr + r.URL.RequestURI()
	w.Header().Set("Location", target)
	writeJSON(w, http.StatusTemporaryRedirect, map[string]string{"leader": id, "location": target})
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
