package raftnode

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tally-db/tally/internal/certtest"
	"github.com/tally-db/tally/security"
)

// logBuf collects a mux's log lines for a test to look for.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitLog polls until the log holds every one of want, or fails the test.
func (l *logBuf) waitLog(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		s := l.String()
		missing := ""
		for _, w := range want {
			if !strings.Contains(s, w) {
				missing = w
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q; log:\n%s", missing, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func bufLogger(b *logBuf) *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// tlsMux starts a mux serving TLS with name's certificate from certs.
func tlsMux(t *testing.T, certs *certtest.Certs, name string, logger *slog.Logger, opts ...MuxOption) *Mux {
	t.Helper()
	p := certs.Pairs[name]
	tl, err := security.Load(security.Files{Cert: p.Cert, Key: p.Key, CA: certs.CA}, logger)
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, WithTLS(tl.RaftServerConfig(), tl.ClientConfig()))
	m, err := NewMux("127.0.0.1:0", Meta{ID: name, HTTPAddr: "127.0.0.1:7" + name}, logger, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// roundTrip opens a raft connection from `from` to group 1 on `to` and passes a message
// each way.
func roundTrip(t *testing.T, from, to *Mux) error {
	t.Helper()
	dst := to.Layer(1) // hosted before the connection arrives
	c, err := from.Layer(1).Dial(raftServerAddress(to), 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		if s, err := dst.Accept(); err == nil {
			accepted <- s
		}
	}()
	select {
	case s := <-accepted:
		defer s.Close()
		s.SetDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "ping" {
			return fmt.Errorf("acceptor read %q, %v", buf, err)
		}
		if _, err := s.Write([]byte("pong")); err != nil {
			return err
		}
	case <-time.After(2 * time.Second):
		return errors.New("the connection never reached the group's layer")
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "pong" {
		return fmt.Errorf("dialer read %q, %v", buf, err)
	}
	return nil
}

func raftServerAddress(m *Mux) raft.ServerAddress { return raft.ServerAddress(m.Addr().String()) }

func TestMux_TLS(t *testing.T) {
	certs := certtest.New(t, filepath.Join(t.TempDir(), "ca"), "a", "b")
	a, b := tlsMux(t, certs, "a", testLogger(t)), tlsMux(t, certs, "b", testLogger(t))
	if err := roundTrip(t, b, a); err != nil {
		t.Fatalf("raft connection over TLS: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if addr, err := b.Resolver().HTTPAddr(ctx, a.Addr().String()); err != nil || addr != "127.0.0.1:7a" {
		t.Fatalf("meta lookup over TLS: %q, %v", addr, err)
	}
	// A plain meta lookup gets nothing from a TLS port.
	if _, err := FetchMeta(ctx, a.Addr().String()); err == nil {
		t.Error("plain FetchMeta answered by a TLS port")
	}
}

func TestMux_TLSRefusesStrangers(t *testing.T) {
	dir := t.TempDir()
	ours := certtest.New(t, filepath.Join(dir, "ours"), "a")
	theirs := certtest.New(t, filepath.Join(dir, "theirs"), "x")
	var log logBuf
	a := tlsMux(t, ours, "a", bufLogger(&log))
	x := tlsMux(t, theirs, "x", testLogger(t))
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	if err := roundTrip(t, x, a); err == nil {
		t.Error("a raft connection with another CA's certificate was routed")
	}
	if _, err := x.Resolver().HTTPAddr(ctx, a.Addr().String()); err == nil {
		t.Error("a meta lookup with another CA's certificate was answered")
	}
	log.waitLog(t, "level=WARN", "refusing a raft port connection", "remote=127.0.0.1:", "TLS handshake")

	noCert, err := NewMux("127.0.0.1:0", Meta{ID: "n"}, testLogger(t), WithTLS(nil, &tls.Config{InsecureSkipVerify: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer noCert.Close()
	if _, err := noCert.Resolver().HTTPAddr(ctx, a.Addr().String()); err == nil {
		t.Error("a meta lookup without a certificate was answered")
	}
	if !strings.Contains(log.String(), "certificate") {
		t.Errorf("the refusal does not say what was wrong:\n%s", log.String())
	}
}

// TestMux_ForgedPlainConnection: a raw TCP peer that sends a valid mux header to a TLS
// (or cluster key) port is dropped, never handed to raft.
func TestMux_ForgedPlainConnection(t *testing.T) {
	certs := certtest.New(t, filepath.Join(t.TempDir(), "ca"), "a")
	key := security.NewClusterKey([]byte("0123456789abcdef0123456789abcdef"))
	keyed, err := NewMux("127.0.0.1:0", Meta{ID: "k"}, testLogger(t), WithClusterKey(key))
	if err != nil {
		t.Fatal(err)
	}
	defer keyed.Close()
	for name, m := range map[string]*Mux{"tls": tlsMux(t, certs, "a", testLogger(t)), "cluster key": keyed} {
		t.Run(name, func(t *testing.T) {
			l := m.Layer(1).(*layer)
			conn, err := net.DialTimeout("tcp", m.Addr().String(), time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// A RequestVote would follow the header.
			if _, err := conn.Write(append(header(muxMagic, chanRaft, 1), make([]byte, 64)...)); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(headerTimeout + 2*time.Second))
			_, err = io.ReadAll(conn) // whatever the port says (an alert, a nonce), then its close
			if os.IsTimeout(err) {
				t.Fatalf("the forged connection was kept open: %v", err)
			}
			if n := len(l.conns); n != 0 {
				t.Fatalf("%d forged connections handed to raft", n)
			}
		})
	}
}

func TestMux_ClusterKey(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	var log logBuf
	a, err := NewMux("127.0.0.1:0", Meta{ID: "a", HTTPAddr: "127.0.0.1:7a"}, bufLogger(&log), WithClusterKey(security.NewClusterKey(key)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewMux("127.0.0.1:0", Meta{ID: "b"}, testLogger(t), WithClusterKey(security.NewClusterKey(key)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	wrong, err := NewMux("127.0.0.1:0", Meta{ID: "w"}, testLogger(t), WithClusterKey(security.NewClusterKey(bytes.ToUpper(key))))
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()

	if err := roundTrip(t, b, a); err != nil {
		t.Fatalf("raft connection with the cluster key: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if addr, err := b.Resolver().HTTPAddr(ctx, a.Addr().String()); err != nil || addr != "127.0.0.1:7a" {
		t.Fatalf("meta lookup with the cluster key: %q, %v", addr, err)
	}
	if _, err := wrong.Resolver().HTTPAddr(ctx, a.Addr().String()); err == nil {
		t.Error("meta lookup with a wrong key answered")
	}
	if err := roundTrip(t, wrong, a); err == nil {
		t.Error("raft connection with a wrong key routed")
	}
	log.waitLog(t, "level=WARN", "refusing a raft port connection", "remote=127.0.0.1:", "cluster key")
}

// flakyListener fails its first fails Accepts the way an exhausted process does.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

func TestMux_AcceptSurvivesErrors(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &flakyListener{Listener: inner}
	ln.fails.Store(5)
	var log logBuf
	m := newMux(ln, Meta{ID: "a", HTTPAddr: "127.0.0.1:7a"}, bufLogger(&log))
	defer m.Close()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if meta, err := FetchMeta(ctx, m.Addr().String()); err != nil || meta.ID != "a" {
		t.Fatalf("FetchMeta after failed accepts: %+v, %v", meta, err)
	}
	if n := strings.Count(log.String(), "raft port accept failed; retrying"); n != 5 {
		t.Errorf("%d failed accepts logged, want 5:\n%s", n, log.String())
	}
	// Close still ends the loop.
	m.Close()
	if _, err := FetchMeta(ctx, m.Addr().String()); err == nil {
		t.Error("FetchMeta answered after Close")
	}
}

// TestMux_ConnectionFlood: three times the cap of idle connections hold the port while
// they are open, and it answers again once they close; routed Raft connections are not
// capped.
func TestMux_ConnectionFlood(t *testing.T) {
	const maxConns = 8
	m, err := NewMux("127.0.0.1:0", Meta{ID: "a", HTTPAddr: "127.0.0.1:7a"}, testLogger(t), WithMaxConns(maxConns))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var flood []net.Conn
	for range 3 * maxConns {
		c, err := net.DialTimeout("tcp", m.Addr().String(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, c)
	}
	short, cancelShort := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err = FetchMeta(short, m.Addr().String())
	cancelShort()
	if err == nil {
		t.Error("FetchMeta was answered past the connection cap")
	}
	for _, c := range flood {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	for {
		try, cancelTry := context.WithTimeout(ctx, time.Second)
		meta, err := FetchMeta(try, m.Addr().String())
		cancelTry()
		if err == nil && meta.ID == "a" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the port did not answer after the flood closed: %v", err)
		}
	}
	// Routed Raft connections do not count against the cap.
	m.Layer(1)
	for i := range maxConns + 2 {
		c, err := dialChannel(ctx, nil, peerSecurity{}, m.Addr().String(), chanRaft, 1, time.Second)
		if err != nil {
			t.Fatalf("raft connection %d: %v", i, err)
		}
		defer c.Close()
	}
	if _, err := FetchMeta(ctx, m.Addr().String()); err != nil {
		t.Fatalf("FetchMeta with %d raft connections open: %v", maxConns+2, err)
	}
}

// BenchmarkMux_FetchMeta measures a new connection's cost (dial, protection, header, meta
// answer) on a plain, a TLS and a cluster key port.
func BenchmarkMux_FetchMeta(b *testing.B) {
	certs := certtest.New(b, filepath.Join(b.TempDir(), "ca"), "a", "b")
	key := security.NewClusterKey([]byte("0123456789abcdef0123456789abcdef"))
	quiet := slog.New(slog.DiscardHandler)
	load := func(name string) *security.TLS {
		tl, err := security.Load(security.Files{Cert: certs.Pairs[name].Cert, Key: certs.Pairs[name].Key, CA: certs.CA}, quiet)
		if err != nil {
			b.Fatal(err)
		}
		return tl
	}
	ta, tb := load("a"), load("b")
	for _, c := range []struct {
		name       string
		srv, dialr []MuxOption
	}{
		{"plain", nil, nil},
		{"tls", []MuxOption{WithTLS(ta.RaftServerConfig(), ta.ClientConfig())}, []MuxOption{WithTLS(tb.RaftServerConfig(), tb.ClientConfig())}},
		{"clusterkey", []MuxOption{WithClusterKey(key)}, []MuxOption{WithClusterKey(key)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			srv, err := NewMux("127.0.0.1:0", Meta{ID: "a", HTTPAddr: "127.0.0.1:7a"}, quiet, c.srv...)
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			cli, err := NewMux("127.0.0.1:0", Meta{ID: "b"}, quiet, c.dialr...)
			if err != nil {
				b.Fatal(err)
			}
			defer cli.Close()
			ctx := context.Background()
			for b.Loop() {
				if _, err := fetchMeta(ctx, cli.dial, cli.peer, srv.Addr().String(), 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
