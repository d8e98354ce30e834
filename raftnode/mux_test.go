package raftnode

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/fsm"
)

func newTestMux(t *testing.T, id string) *Mux {
	t.Helper()
	m, err := NewMux("127.0.0.1:0", Meta{ID: id, HTTPAddr: "127.0.0.1:7" + id}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// appliedRegistry serves a mux's applied indexes (Mux.ServeApplied) from the nodes added
// to it.
type appliedRegistry struct {
	mu    sync.Mutex
	nodes map[uint32]*Node
}

func serveApplied(m *Mux) *appliedRegistry {
	r := &appliedRegistry{nodes: map[uint32]*Node{}}
	m.ServeApplied(r.applied)
	return r
}

func (r *appliedRegistry) add(n *Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nodes[n.Group()] = n
}

func (r *appliedRegistry) applied(g uint32) (uint64, bool) {
	r.mu.Lock()
	n := r.nodes[g]
	r.mu.Unlock()
	if n == nil {
		return 0, false
	}
	return n.LogApplied(), true
}

func TestMux_FetchMeta(t *testing.T) {
	m := newTestMux(t, "1")
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	got, err := FetchMeta(ctx, m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	want := Meta{ID: "1", HTTPAddr: "127.0.0.1:71", RaftAddr: m.Addr().String()}
	if got != want || m.Meta() != want {
		t.Errorf("meta %+v (Meta() %+v), want %+v", got, m.Meta(), want)
	}

	m.Close()
	if _, err := FetchMeta(ctx, m.Addr().String()); err == nil {
		t.Error("FetchMeta on a closed mux succeeded")
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// header builds a connection header.
func header(magic, kind byte, group uint32) []byte {
	h := []byte{magic, kind, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(h[2:], group)
	return h
}

func TestMux_DropsBadConnections(t *testing.T) {
	m := newTestMux(t, "1")
	m.Layer(1) // group 1 is hosted; others are not
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"bad magic", []byte("GET / HTTP/1.1\r\n\r\n")},
		{"short header", []byte{muxMagic, chanRaft}},
		{"unknown channel", header(muxMagic, 9, 1)},
		{"raft for an unknown group", header(muxMagic, chanRaft, 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", m.Addr().String(), time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			conn.(*net.TCPConn).CloseWrite() // a short header ends here instead of waiting
			conn.SetReadDeadline(time.Now().Add(headerTimeout - time.Second))
			n, err := conn.Read(make([]byte, 64))
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection kept open: %v", err)
			}
			// io.EOF, or a reset when the mux closed with bytes unread.
			if n != 0 || err == nil {
				t.Fatalf("read %d bytes, %v: want the connection dropped", n, err)
			}
		})
	}
	// The port still works.
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if _, err := FetchMeta(ctx, m.Addr().String()); err != nil {
		t.Fatalf("FetchMeta after bad connections: %v", err)
	}
}

// TestMux_TwoGroups runs two groups over two nodes' shared TCP ports: each node hosts a
// replica of both groups, so every raft connection is routed by group ID.
func TestMux_TwoGroups(t *testing.T) {
	muxes := []*Mux{newTestMux(t, "a"), newTestMux(t, "b")}
	ids := []string{"a", "b"}
	groups := []uint32{1, 2}
	dir := t.TempDir()
	nodes := map[uint32][]*Node{}
	t.Cleanup(func() {
		for _, g := range groups {
			for i := len(nodes[g]) - 1; i >= 0; i-- {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				if err := nodes[g][i].Close(ctx); err != nil {
					t.Errorf("close group %d node %s: %v", g, nodes[g][i].ID(), err)
				}
				cancel()
			}
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	regs := []*appliedRegistry{serveApplied(muxes[0]), serveApplied(muxes[1])}
	for _, g := range groups {
		for i, m := range muxes {
			cfg := testConfig(t, ids[i], filepath.Join(dir, ids[i], string(rune('0'+g))))
			cfg.Group = g
			cfg.Bootstrap = i == 0
			cfg.Probe = m.Probe
			n, err := Open(cfg, NewTCPTransport(m, g, cfg.Logger))
			if err != nil {
				t.Fatalf("open group %d on %s: %v", g, ids[i], err)
			}
			regs[i].add(n)
			nodes[g] = append(nodes[g], n)
		}
		leader := waitLeaderOf(t, func() []*Node { return nodes[g][:1] }, testTimeout)
		if err := leader.Join(ctx, "b", muxes[1].Addr().String()); err != nil {
			t.Fatalf("join b to group %d: %v", g, err)
		}
		waitLeaderOf(t, func() []*Node { return nodes[g] }, testTimeout)
	}

	// Each group gets its own app and events; neither sees the other's.
	apps := map[uint32]string{1: testApp, 2: `@app:name('U') define stream U1 (name string); define aggregation UA from U1 select name, count() as c group by name aggregate every sec ... year;`}
	for _, g := range groups {
		leader := waitLeaderOf(t, func() []*Node { return nodes[g] }, testTimeout)
		if _, _, err := leader.Deploy(ctx, apps[g]); err != nil {
			t.Fatalf("deploy on group %d: %v", g, err)
		}
	}
	leader1 := waitLeaderOf(t, func() []*Node { return nodes[1] }, testTimeout)
	res := ingest(t, leader1, "p", 1, row("x", 42))
	for _, g := range groups {
		for _, n := range nodes[g] {
			if err := n.WaitApplied(ctx, res.Index); g == 1 && err != nil {
				t.Fatal(err)
			}
			var s, u bool
			n.FSM().Read(func(e fsm.View) { _, s = e.Stream("S"); _, u = e.Stream("U1") })
			if s != (g == 1) || u != (g == 2) {
				t.Errorf("group %d on %s: stream S %v, U1 %v", g, n.ID(), s, u)
			}
			if n.Group() != g {
				t.Errorf("Group() = %d, want %d", n.Group(), g)
			}
		}
	}
	for _, n := range nodes[1] {
		if got := totals(t, n, Stale, res.Index)["x"]; got != (keyAgg{42, 1}) {
			t.Errorf("group 1 on %s: x=%+v", n.ID(), got)
		}
	}

	// FetchMeta finds a leader's HTTP address from its raft address.
	_, raftAddr, err := leader1.Leader()
	if err != nil {
		t.Fatal(err)
	}
	meta, err := FetchMeta(ctx, raftAddr)
	if err != nil {
		t.Fatal(err)
	}
	if meta.ID != leader1.ID() || meta.RaftAddr != raftAddr {
		t.Errorf("meta of the leader at %s: %+v", raftAddr, meta)
	}

	// Closing group 2's replica on b leaves the port to group 1, and b's group 2 layer
	// refuses connections from then on.
	var b2 *Node
	for _, n := range nodes[2] {
		if n.ID() == "b" {
			b2 = n
		}
	}
	if err := b2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", muxes[1].Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(header(muxMagic, chanRaft, 2)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || os.IsTimeout(err) {
		t.Errorf("raft connection to a closed group: %v, want it dropped", err)
	}
	res = ingest(t, waitLeaderOf(t, func() []*Node { return nodes[1] }, testTimeout), "p", 2, row("x", 1))
	for _, n := range nodes[1] {
		if err := n.WaitApplied(ctx, res.Index); err != nil {
			t.Errorf("group 1 on %s after group 2 closed: %v", n.ID(), err)
		}
	}
}

// TestTransport_NoPipeline: replication over the mux never pipelines (NewTCPTransport says
// why: hashicorp/raft's pipeline can stop replicating to a follower for good).
func TestTransport_NoPipeline(t *testing.T) {
	a, b := newTestMux(t, "a"), newTestMux(t, "b")
	tr := NewTCPTransport(a, 0, testLogger(t))
	defer tr.(interface{ Close() error }).Close()
	p, err := tr.AppendEntriesPipeline("b", raft.ServerAddress(b.Addr().String()))
	if !errors.Is(err, raft.ErrPipelineReplicationNotSupported) {
		if p != nil {
			p.Close()
		}
		t.Fatalf("AppendEntriesPipeline: %v, want %v", err, raft.ErrPipelineReplicationNotSupported)
	}
}
