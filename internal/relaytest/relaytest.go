// Package relaytest is a TCP relay for tests: it passes every connection it accepts on a
// loopback port to a target and counts them, so a test can tell that a node dialled the
// address it was told to.
package relaytest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Relay forwards connections to one target. Cleanup closes its listener and every
// connection it passed (a closed raft transport leaves its peers' connections open).
type Relay struct {
	ln    net.Listener
	conns atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	open  []net.Conn
}

// New starts a relay to target for the test.
func New(t testing.TB, target string) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		for _, c := range r.open {
			c.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.conns.Add(1)
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.open = append(r.open, c, up)
			r.mu.Unlock()
			r.wg.Go(func() { _, _ = io.Copy(up, c); up.Close() })
			r.wg.Go(func() { _, _ = io.Copy(c, up); c.Close() })
		}
	})
	return r
}

// Addr is the address to dial instead of the target.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Conns is how many connections the relay has accepted.
func (r *Relay) Conns() int64 { return r.conns.Load() }
