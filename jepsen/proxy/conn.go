package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// conn is one proxied connection: the client's connection to the proxy and, once dialled,
// the proxy's connection to the target. Each direction has a reading goroutine and a
// writing goroutine joined by a bounded queue; the writer waits for each chunk's due time,
// asks the proxy for the chunk's fate and delivers it.
type conn struct {
	p      *Proxy
	id     uint64
	client net.Conn
	done   chan struct{} // closed by shutdown

	mu     sync.Mutex
	target net.Conn // nil until dialled
	closed bool

	// Guarded by p.mu.
	tainted bool // lost bytes to a blackhole, or never connected: Heal resets it
	ended   int  // directions that ended cleanly (end of stream delivered)
}

// chunk is what one read returned: n bytes of *buf, or the end of the stream (err).
type chunk struct {
	buf *[]byte
	n   int
	err error     // io.EOF or the read error; the stream's last chunk
	due time.Time // deliver no earlier than this
}

// run dials the target and forwards both directions.
func (c *conn) run() {
	p := c.p
	ctx, cancel := context.WithTimeout(p.ctx, dialTimeout)
	var d net.Dialer
	t, err := d.DialContext(ctx, "tcp", p.target)
	cancel()
	if err != nil {
		p.dialFailures.Add(1)
		p.logger.Debug("dial target", "conn", c.id, "err", err)
		c.shutdown(true, "dial failed")
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		abort(t)
		return
	}
	c.target = t
	c.mu.Unlock()

	fwd, back := make(chan chunk, queueLen), make(chan chunk, queueLen)
	p.wg.Go(func() { c.read(c.client, fwd) })
	p.wg.Go(func() { c.write(Forward, t, fwd) })
	p.wg.Go(func() { c.read(t, back) })
	c.write(Backward, c.client, back)
}

// hold reads and discards what the client of a held connection sends, until it closes or
// the connection is shut down. The connection stays open after the client's end of stream:
// a partition would lose the FIN too.
func (c *conn) hold() {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	for {
		n, err := c.client.Read(*bp)
		c.p.discardedBytes.Add(int64(n))
		if err != nil {
			return
		}
	}
}

// read reads src into chunks and queues them until the end of the stream or shutdown.
func (c *conn) read(src net.Conn, q chan<- chunk) {
	for {
		bp := bufPool.Get().(*[]byte)
		n, err := src.Read(*bp)
		if n > 0 {
			if !c.enqueue(q, chunk{buf: bp, n: n, due: c.p.due(time.Now())}) {
				bufPool.Put(bp)
				return
			}
		} else {
			bufPool.Put(bp)
		}
		if err != nil {
			c.enqueue(q, chunk{err: err, due: c.p.due(time.Now())})
			return
		}
	}
}

// enqueue queues ch, or reports false if the connection is shut down first.
func (c *conn) enqueue(q chan<- chunk, ch chunk) bool {
	select {
	case q <- ch:
		return true
	case <-c.done:
		return false
	}
}

// write delivers the chunks of q to dst, in order, each no earlier than its due time.
func (c *conn) write(dir Direction, dst net.Conn, q <-chan chunk) {
	p := c.p
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		var ch chunk
		select {
		case ch = <-q:
		case <-c.done:
			return
		}
		if wait := time.Until(ch.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-c.done:
				return
			}
		}
		select {
		case <-c.done:
			return
		default:
		}
		drop, reset := p.fate(c, dir, ch.err == nil)
		switch {
		case drop:
			if ch.buf != nil {
				p.discardedBytes.Add(int64(ch.n))
				bufPool.Put(ch.buf)
			}
			if ch.err != nil {
				// The end of stream is lost too; the connection stays open until Heal.
				return
			}
			continue
		case reset:
			bufPool.Put(ch.buf)
			if c.shutdown(true, "flaky") {
				p.flakyResets.Add(1)
			}
			return
		}
		if ch.err != nil {
			if !errors.Is(ch.err, io.EOF) {
				// The source was reset (or failed): reset the other side too.
				c.shutdown(true, "read: "+ch.err.Error())
				return
			}
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				if err := cw.CloseWrite(); err != nil {
					c.shutdown(true, "close write: "+err.Error())
					return
				}
			}
			c.endedCleanly()
			return
		}
		_, err := dst.Write((*ch.buf)[:ch.n])
		bufPool.Put(ch.buf)
		if err != nil {
			c.shutdown(true, "write: "+err.Error())
			return
		}
		if dir == Forward {
			p.forwardBytes.Add(int64(ch.n))
		} else {
			p.backwardBytes.Add(int64(ch.n))
		}
	}
}

// endedCleanly records that one direction delivered its end of stream; once both have, and
// the connection lost nothing, it is closed.
func (c *conn) endedCleanly() {
	c.p.mu.Lock()
	c.ended++
	done := c.ended == 2 && !c.tainted
	c.p.mu.Unlock()
	if done {
		c.shutdown(false, "closed by both ends")
	}
}

// shutdown closes both sides of the connection (with a TCP reset if abortive) and forgets
// it. It reports whether this call did it.
func (c *conn) shutdown(abortive bool, reason string) bool {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false
	}
	c.closed = true
	close(c.done)
	t := c.target
	c.mu.Unlock()
	for _, nc := range []net.Conn{c.client, t} {
		if nc == nil {
			continue
		}
		if abortive {
			abort(nc)
		} else {
			_ = nc.Close()
		}
	}
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
	c.p.logger.Debug("connection closed", "conn", c.id, "reason", reason, "reset", abortive)
	return true
}

// abort closes nc with a TCP reset rather than a FIN, so the peer sees "connection reset".
func abort(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
}
