package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Direction selects the bytes of a connection a fault applies to.
type Direction uint8

const (
	// Forward is the bytes the client (the endpoint that dialled the proxy) sends to the
	// target.
	Forward Direction = 1 << iota
	// Backward is the bytes the target sends back to the client.
	Backward
	// Both is Forward and Backward.
	Both = Forward | Backward
)

// String returns "none", "forward", "backward" or "both".
func (d Direction) String() string {
	switch d {
	case 0:
		return "none"
	case Forward:
		return "forward"
	case Backward:
		return "backward"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// Faults is the fault state of a proxy. The zero value is a healthy link.
type Faults struct {
	Blackhole Direction     // directions whose bytes are discarded
	Refuse    bool          // Reset is in effect: new connections are reset at once
	Delay     time.Duration // minimum delay of every chunk
	Jitter    time.Duration // extra uniform[0, Jitter) delay of every chunk
	Flaky     float64       // probability that a chunk resets its connection
}

// Healthy reports whether f is no fault at all.
func (f Faults) Healthy() bool { return f == Faults{} }

// Stats counts what a proxy did since Listen. Byte counts are payload bytes.
type Stats struct {
	Accepted       int64 // connections accepted, including held and refused ones
	Held           int64 // connections accepted while both directions were blackholed, never connected
	Refused        int64 // connections reset at once because Reset was in effect
	DialFailures   int64 // connections reset because the target could not be dialled
	ForwardBytes   int64 // bytes delivered client → target
	BackwardBytes  int64 // bytes delivered target → client
	DiscardedBytes int64 // bytes discarded by a blackhole, either direction
	Resets         int64 // open connections reset by Reset
	FlakyResets    int64 // connections reset by a flaky draw
	CorruptClosed  int64 // connections reset by Heal because they lost bytes to a blackhole
	Open           int64 // connections open now
}

// dialTimeout bounds a dial of the target; Close cancels dials in progress.
const dialTimeout = 10 * time.Second

// chunkSize is the largest chunk one read returns.
const chunkSize = 32 << 10

// queueLen is how many chunks per direction may wait between the reading and the writing
// goroutine (in flight in a delayed link); beyond it, reading stops and TCP flow control
// pushes back on the sender.
const queueLen = 64

var bufPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// Proxy forwards the TCP connections accepted on a loopback port to one target address,
// applying the faults set on it. Its methods are safe for concurrent use.
type Proxy struct {
	name   string
	target string
	ln     net.Listener
	logger *slog.Logger
	ctx    context.Context // cancelled by Close: aborts dials in progress
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of the proxy

	mu     sync.Mutex
	rng    *rand.Rand // guarded by mu
	faults Faults     // guarded by mu
	conns  map[*conn]struct{}
	nextID uint64
	closed bool

	closeOnce sync.Once
	closeErr  error

	accepted, held, refused, dialFailures       atomic.Int64
	forwardBytes, backwardBytes, discardedBytes atomic.Int64
	resets, flakyResets, corruptClosed          atomic.Int64
}

// Listen starts a proxy named name (for logs and reports) that listens on 127.0.0.1 on a
// free port and forwards every connection to target. seed seeds the proxy's jitter and flaky
// draws. A nil logger discards the logs.
func Listen(name, target string, seed uint64, logger *slog.Logger) (*Proxy, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		name:   name,
		target: target,
		ln:     ln,
		logger: logger.With("proxy", name),
		ctx:    ctx,
		cancel: cancel,
		rng:    rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
		conns:  make(map[*conn]struct{}),
	}
	p.wg.Go(p.serve)
	p.logger.Debug("proxy listening", "addr", p.Addr(), "target", target)
	return p, nil
}

// Addr returns the host:port to dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Name returns the proxy's name.
func (p *Proxy) Name() string { return p.name }

// Target returns the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Faults returns the proxy's current fault state.
func (p *Proxy) Faults() Faults {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults
}

// Blackhole adds dir to the blackholed directions: from now on, bytes (and ends of stream)
// travelling that way on any connection are discarded, and the connections stay open. While
// Both is blackholed, new connections are held open without being connected to the target.
// Only Heal removes a blackhole.
func (p *Proxy) Blackhole(dir Direction) {
	p.mu.Lock()
	p.faults.Blackhole |= dir & Both
	now := p.faults.Blackhole
	p.mu.Unlock()
	p.logger.Info("fault: blackhole", "dir", dir, "blackholed", now)
}

// Reset resets every open connection (both sides, with a TCP reset) and, until Heal, resets
// every new connection as soon as it is accepted.
func (p *Proxy) Reset() {
	p.mu.Lock()
	p.faults.Refuse = true
	conns := p.snapshot()
	p.mu.Unlock()
	n := 0
	for _, c := range conns {
		if c.shutdown(true, "reset") {
			p.resets.Add(1)
			n++
		}
	}
	p.logger.Info("fault: reset", "connections", n)
}

// SetDelay delays every chunk by d plus a uniform random [0, jitter), from when it is read,
// keeping the order of each direction. Negative durations count as zero; SetDelay(0, 0)
// removes the delay.
func (p *Proxy) SetDelay(d, jitter time.Duration) {
	d, jitter = max(d, 0), max(jitter, 0)
	p.mu.Lock()
	p.faults.Delay, p.faults.Jitter = d, jitter
	p.mu.Unlock()
	p.logger.Info("fault: delay", "delay", d, "jitter", jitter)
}

// SetFlaky makes every chunk reset its connection (both sides) with probability prob
// instead of being delivered. prob is clamped to [0, 1]; 0 removes the fault.
func (p *Proxy) SetFlaky(prob float64) {
	if !(prob > 0) { // also NaN
		prob = 0
	}
	prob = min(prob, 1)
	p.mu.Lock()
	p.faults.Flaky = prob
	p.mu.Unlock()
	p.logger.Info("fault: flaky", "prob", prob)
}

// Heal clears every fault. Connections that lost bytes to a blackhole, and those held
// without a target, are reset (their byte streams are corrupt); the others carry on.
func (p *Proxy) Heal() {
	p.mu.Lock()
	was := p.faults
	p.faults = Faults{}
	var corrupt []*conn
	for c := range p.conns {
		if c.tainted {
			corrupt = append(corrupt, c)
		}
	}
	p.mu.Unlock()
	n := 0
	for _, c := range corrupt {
		if c.shutdown(true, "lost bytes to a blackhole") {
			p.corruptClosed.Add(1)
			n++
		}
	}
	if !was.Healthy() || n > 0 {
		p.logger.Info("heal", "was", fmt.Sprintf("%+v", was), "corrupt_closed", n)
	}
}

// Close stops listening, resets every connection and waits for every goroutine of the proxy
// to end. Later calls return the first call's result.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		conns := p.snapshot()
		p.mu.Unlock()
		p.cancel()
		if err := p.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			p.closeErr = fmt.Errorf("proxy %s: %w", p.name, err)
		}
		for _, c := range conns {
			c.shutdown(true, "proxy closed")
		}
		p.wg.Wait()
		p.logger.Debug("proxy closed")
	})
	return p.closeErr
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	open := int64(len(p.conns))
	p.mu.Unlock()
	return Stats{
		Accepted:       p.accepted.Load(),
		Held:           p.held.Load(),
		Refused:        p.refused.Load(),
		DialFailures:   p.dialFailures.Load(),
		ForwardBytes:   p.forwardBytes.Load(),
		BackwardBytes:  p.backwardBytes.Load(),
		DiscardedBytes: p.discardedBytes.Load(),
		Resets:         p.resets.Load(),
		FlakyResets:    p.flakyResets.Load(),
		CorruptClosed:  p.corruptClosed.Load(),
		Open:           open,
	}
}

// snapshot returns the open connections. p.mu must be held.
func (p *Proxy) snapshot() []*conn {
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	return conns
}

// serve accepts connections until the listener is closed.
func (p *Proxy) serve() {
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || p.ctx.Err() != nil {
				return
			}
			// A transient failure (e.g. out of file descriptors): back off a little.
			p.logger.Warn("accept", "err", err)
			select {
			case <-time.After(10 * time.Millisecond):
			case <-p.ctx.Done():
				return
			}
			continue
		}
		p.accepted.Add(1)
		p.admit(nc)
	}
}

// admit decides, under the lock that fault changes take, what becomes of a new connection:
// reset (Reset in effect), held (both directions blackholed) or forwarded.
func (p *Proxy) admit(nc net.Conn) {
	p.mu.Lock()
	if p.closed || p.faults.Refuse {
		refused := !p.closed
		p.mu.Unlock()
		abort(nc)
		if refused {
			p.refused.Add(1)
			p.logger.Debug("connection refused (reset in effect)", "client", nc.RemoteAddr().String())
		}
		return
	}
	p.nextID++
	c := &conn{p: p, id: p.nextID, client: nc, done: make(chan struct{})}
	held := p.faults.Blackhole == Both
	// A held connection never reaches the target: whatever the client sends is lost.
	c.tainted = held
	p.conns[c] = struct{}{}
	if held {
		p.wg.Go(c.hold)
	} else {
		p.wg.Go(c.run)
	}
	p.mu.Unlock()
	if held {
		p.held.Add(1)
	}
	p.logger.Debug("connection accepted", "conn", c.id, "client", nc.RemoteAddr().String(), "held", held)
}

// fate decides, at delivery time, what becomes of a chunk travelling in dir: dropped (dir
// is blackholed; the connection is marked corrupt), reset (a flaky draw hit; only data
// chunks draw) or delivered. Deciding and marking under p.mu means Heal either sees the
// mark or the chunk is delivered after it.
func (p *Proxy) fate(c *conn, dir Direction, data bool) (drop, reset bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.faults.Blackhole&dir != 0 {
		c.tainted = true
		return true, false
	}
	if data && p.faults.Flaky > 0 && p.rng.Float64() < p.faults.Flaky {
		return false, true
	}
	return false, false
}

// due returns when a chunk read at now may be delivered.
func (p *Proxy) due(now time.Time) time.Time {
	p.mu.Lock()
	d := p.faults.Delay
	if p.faults.Jitter > 0 {
		d += time.Duration(p.rng.Int64N(int64(p.faults.Jitter)))
	}
	p.mu.Unlock()
	if d == 0 {
		return time.Time{}
	}
	return now.Add(d)
}
