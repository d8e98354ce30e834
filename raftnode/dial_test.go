package raftnode

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tally-db/tally/internal/relaytest"
)

func TestParseDialMap(t *testing.T) {
	m, err := ParseDialMap([]string{"127.0.0.1:7071=127.0.0.1:9001", " n2:7081 = proxy:9002 ", "127.0.0.1:7071=127.0.0.1:9001"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.String(), "127.0.0.1:7071=127.0.0.1:9001,n2:7081=proxy:9002"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if m.Rewrite("n2:7081") != "proxy:9002" || m.Rewrite("n3:7091") != "n3:7091" {
		t.Errorf("Rewrite: %q, %q", m.Rewrite("n2:7081"), m.Rewrite("n3:7091"))
	}
	if m, err := ParseDialMap(nil); err != nil || m.Dialer() != nil {
		t.Errorf("empty map: %v, dialer set %v", err, m.Dialer() != nil)
	}
	for _, c := range []struct{ entry, want string }{
		{"127.0.0.1:7071", `"127.0.0.1:7071": want FROM=TO`},
		{"=127.0.0.1:1", `"=127.0.0.1:1": want FROM=TO`},
		{"127.0.0.1=127.0.0.1:1", `"127.0.0.1" is not host:port`},
		{"a:1=b", `"b" is not host:port`},
		{"a:1=a:1", "a:1 is mapped to itself"},
	} {
		if _, err := ParseDialMap([]string{c.entry}); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.entry) {
			t.Errorf("entry %q: %v, want an error naming the entry with %q", c.entry, err, c.want)
		}
	}
	if _, err := ParseDialMap([]string{"a:1=b:2", "a:1=c:3"}); err == nil || !strings.Contains(err.Error(), `"a:1=c:3": a:1 is already mapped to b:2`) {
		t.Errorf("a second target: %v", err)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestDialMap_MuxAndResolver: with a dial map, a node's Raft connections and meta lookups to
// a mapped peer go to the mapped address, and nothing else changes.
func TestDialMap_MuxAndResolver(t *testing.T) {
	b := newTestMux(t, "b")
	rel := relaytest.New(t, b.Addr().String())
	dm := DialMap{b.Addr().String(): rel.Addr()}
	a, err := NewMux("127.0.0.1:0", Meta{ID: "a", HTTPAddr: "127.0.0.1:7a"}, testLogger(t), WithDialer(dm.Dialer()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	// The resolver asks the relay, and caches the answer: one connection.
	res := NewResolver()
	res.Dial = dm.Dialer()
	for range 2 {
		if addr, err := res.HTTPAddr(ctx, b.Addr().String()); err != nil || addr != "127.0.0.1:7b" {
			t.Fatalf("HTTPAddr of b: %q, %v", addr, err)
		}
	}
	if n := rel.Conns(); n != 1 {
		t.Errorf("resolver: %d connections through the relay, want 1", n)
	}
	// A node without the map dials b directly.
	if _, err := NewResolver().HTTPAddr(ctx, b.Addr().String()); err != nil || rel.Conns() != 1 {
		t.Errorf("resolver without a map: %v, %d relayed", err, rel.Conns())
	}
	// A map to a dead address is not bypassed.
	dead := NewResolver()
	dead.Dial = DialMap{b.Addr().String(): closedAddr(t)}.Dialer()
	if _, err := dead.HTTPAddr(ctx, b.Addr().String()); err == nil {
		t.Error("a map to a closed port still reached b")
	}

	// A group over both muxes: a replicates to b through the relay, and b is known to
	// raft by its own address.
	dir := t.TempDir()
	var nodes []*Node
	t.Cleanup(func() {
		for _, n := range nodes {
			cctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_ = n.Close(cctx)
			cancel()
		}
	})
	for i, m := range []*Mux{a, b} {
		id := []string{"a", "b"}[i]
		cfg := testConfig(t, id, filepath.Join(dir, id))
		cfg.Bootstrap = i == 0
		cfg.Probe = m.Probe
		n, err := Open(cfg, NewTCPTransport(m, 0, cfg.Logger))
		if err != nil {
			t.Fatal(err)
		}
		serveApplied(m).add(n)
		nodes = append(nodes, n)
	}
	leader := waitLeaderOf(t, func() []*Node { return nodes[:1] }, testTimeout)
	before := rel.Conns()
	if err := leader.Join(ctx, "b", b.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := leader.Deploy(ctx, testApp); err != nil {
		t.Fatal(err)
	}
	r := ingest(t, leader, "p", 1, row("x", 7))
	if err := nodes[1].WaitApplied(ctx, r.Index); err != nil {
		t.Fatal(err)
	}
	if rel.Conns() == before {
		t.Error("a replicated to b without a connection through the relay")
	}
	for _, m := range nodes[0].Status().Members {
		if m.ID == "b" && m.RaftAddr != b.Addr().String() {
			t.Errorf("b is known as %s, want its own address %s", m.RaftAddr, b.Addr())
		}
	}
}
