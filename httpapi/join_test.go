package httpapi

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tally-db/tally/raftnode"
)

// TestJoin_RefusalsAnswer409And400: a join that would move a member answers 409, one whose
// node does not answer on its Raft address 400, and neither changes the configuration.
func TestJoin_RefusalsAnswer409And400(t *testing.T) {
	probe := func(_ context.Context, addr string, _ uint32) (raftnode.Meta, error) {
		if addr == "127.0.0.1:2" {
			return raftnode.Meta{ID: "someone-else"}, nil
		}
		return raftnode.Meta{}, errors.New("connection refused")
	}
	n, srv := newSingleNode(t, Config{}, func(c *raftnode.Config) { c.Probe = probe })
	self := n.Status().Members[0].RaftAddr
	cases := []struct {
		body string
		code int
		msg  string
	}{
		{`{"id":"n1","raft_addr":"127.0.0.1:1"}`, 409, "node n1 is already a member at " + self + "; remove it first"},
		{`{"id":"n2","raft_addr":"` + self + `"}`, 409, "already belongs to node n1"},
		{`{"id":"n2","raft_addr":"127.0.0.1:1"}`, 400, "node n2 does not answer on its raft address 127.0.0.1:1"},
		{`{"id":"n2","raft_addr":"127.0.0.1:2"}`, 400, `says it is \"someone-else\", not \"n2\"`},
	}
	for _, c := range cases {
		r := do(t, "POST", srv.URL+"/v1/cluster/join", c.body)
		if r.code != c.code || !strings.Contains(r.body, c.msg) {
			t.Errorf("join %s: %d %s, want %d containing %s", c.body, r.code, r.body, c.code, c.msg)
		}
		if m := n.Status().Members; len(m) != 1 || m[0].ID != "n1" {
			t.Errorf("join %s changed the configuration: %+v", c.body, m)
		}
	}
	// The same ID and address: idempotent.
	if r := do(t, "POST", srv.URL+"/v1/cluster/join", `{"id":"n1","raft_addr":"`+self+`"}`); r.code != 200 {
		t.Errorf("rejoin: %d %s", r.code, r.body)
	}
}
