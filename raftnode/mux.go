package raftnode

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Every connection to a node's Raft port starts with a 6-byte header: the magic byte, a
// channel kind and a group ID (big-endian uint32). Raft connections of different groups
// share the port; the meta channel answers "who are you" for forwarding.
const (
	muxMagic    byte = 0x54 // 'T'
	chanRaft    byte = 1
	chanMeta    byte = 2
	headerBytes      = 6
	// headerTimeout bounds how long an accepted connection may take to say what it is.
	headerTimeout = 5 * time.Second
)

// ErrMuxClosed is returned by Accept after the mux is closed.
var ErrMuxClosed = errors.New("raftnode: raft port closed")

// Meta is what a node says about itself on the meta channel.
type Meta struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
	RaftAddr string `json:"raft_addr"`
	// Applied is how far this node has applied the log of the group named in the meta
	// request's header (Node.LogApplied), when it hosts that group and the mux was told
	// (Mux.ServeApplied). A leader promotes a joined node once it has caught up.
	Applied *uint64 `json:"applied_index,omitempty"`
}

// Mux shares one TCP listener between the Raft transports of several groups and the meta
// channel. It is safe for concurrent use.
type Mux struct {
	ln     net.Listener
	meta   Meta
	logger *slog.Logger
	dial   Dialer // never nil

	mu     sync.Mutex
	layers map[uint32]*layer
	closed bool
	done   chan struct{}

	applied atomic.Pointer[func(group uint32) (uint64, bool)] // ServeApplied
}

// MuxOption adjusts a Mux at NewMux.
type MuxOption func(*Mux)

// WithDialer makes the mux's Raft connections to other nodes go through dial (a DialMap's,
// say) instead of dialing the peer's address directly. nil keeps the direct dial.
func WithDialer(dial Dialer) MuxOption {
	return func(m *Mux) {
		if dial != nil {
			m.dial = dial
		}
	}
}

// NewMux listens on addr. meta.RaftAddr is the address other nodes dial (defaults to the
// listener's address); meta is served on the meta channel.
func NewMux(addr string, meta Meta, logger *slog.Logger, opts ...MuxOption) (*Mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raftnode: listen on raft address %s: %w", addr, err)
	}
	if meta.RaftAddr == "" {
		meta.RaftAddr = ln.Addr().String()
	}
	if logger == nil {
		logger = slog.Default()
	}
	m := &Mux{ln: ln, meta: meta, logger: logger, dial: dialDirect, layers: map[uint32]*layer{}, done: make(chan struct{})}
	for _, o := range opts {
		o(m)
	}
	go m.serve()
	return m, nil
}

// Addr is the address the mux listens on.
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

// Meta is what this node serves on the meta channel.
func (m *Mux) Meta() Meta { return m.meta }

// Close stops accepting connections and closes every layer.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.done)
	m.mu.Unlock()
	return m.ln.Close()
}

// Layer returns the raft.StreamLayer of group, creating it on first use.
func (m *Mux) Layer(group uint32) raft.StreamLayer {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.layers[group]
	if !ok {
		l = &layer{mux: m, group: group, conns: make(chan net.Conn, 16), closed: make(chan struct{})}
		m.layers[group] = l
	}
	return l
}

func (m *Mux) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.logger.Error("raft port accept failed; no more connections will be accepted", "err", err)
			return
		}
		go m.route(c)
	}
}

// route reads a connection's header and hands it to its group's layer or answers meta.
func (m *Mux) route(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(headerTimeout))
	var h [headerBytes]byte
	if _, err := io.ReadFull(c, h[:]); err != nil || h[0] != muxMagic {
		m.logger.Warn("dropping raft port connection with a bad header", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	group := binary.BigEndian.Uint32(h[2:])
	switch h[1] {
	case chanMeta:
		defer c.Close()
		meta := m.meta
		if fn := m.applied.Load(); fn != nil {
			if a, ok := (*fn)(group); ok {
				meta.Applied = &a
			}
		}
		_ = c.SetWriteDeadline(time.Now().Add(headerTimeout))
		_ = json.NewEncoder(c).Encode(meta)
	case chanRaft:
		m.mu.Lock()
		l, ok := m.layers[group]
		m.mu.Unlock()
		if !ok {
			m.logger.Warn("dropping raft connection for a group this node does not host", "group", group, "remote", c.RemoteAddr().String())
			c.Close()
			return
		}
		select {
		case l.conns <- c:
		case <-l.closed:
			c.Close()
		case <-m.done:
			c.Close()
		}
	default:
		c.Close()
	}
}

// dialChannel connects to the Raft port at addr through dial (nil: directly) and sends the
// header of a channel.
func dialChannel(ctx context.Context, dial Dialer, addr string, kind byte, group uint32, timeout time.Duration) (net.Conn, error) {
	if dial == nil {
		dial = dialDirect
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	c, err := dial(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return nil, err
	}
	var h [headerBytes]byte
	h[0], h[1] = muxMagic, kind
	binary.BigEndian.PutUint32(h[2:], group)
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(h[:]); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// FetchMeta asks the node at raft address addr who it is.
func FetchMeta(ctx context.Context, addr string) (Meta, error) {
	return fetchMeta(ctx, nil, addr, 0)
}

// ServeApplied makes the meta channel answer, for the group a request names, how far this
// node has applied that group's log: fn returns it, or false for a group the node does not
// host.
func (m *Mux) ServeApplied(fn func(group uint32) (uint64, bool)) { m.applied.Store(&fn) }

// Probe asks the node at Raft address addr who it is and how far it has applied group's
// log, dialing as the mux's Raft connections do. It is a Prober.
func (m *Mux) Probe(ctx context.Context, addr string, group uint32) (Meta, error) {
	return fetchMeta(ctx, m.dial, addr, group)
}

// fetchMeta is FetchMeta through dial (nil: directly), about group.
func fetchMeta(ctx context.Context, dial Dialer, addr string, group uint32) (Meta, error) {
	timeout := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	c, err := dialChannel(ctx, dial, addr, chanMeta, group, timeout)
	if err != nil {
		return Meta{}, fmt.Errorf("raftnode: ask %s who it is: %w", addr, err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var m Meta
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&m); err != nil {
		return Meta{}, fmt.Errorf("raftnode: read meta from %s: %w", addr, err)
	}
	return m, nil
}

// layer is one group's raft.StreamLayer on the shared port.
type layer struct {
	mux    *Mux
	group  uint32
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func (l *layer) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, ErrMuxClosed
	case <-l.mux.done:
		return nil, ErrMuxClosed
	}
}

// Close stops this group's layer; the shared listener stays open for other groups.
func (l *layer) Close() error {
	l.once.Do(func() {
		close(l.closed)
		l.mux.mu.Lock()
		if l.mux.layers[l.group] == l {
			delete(l.mux.layers, l.group)
		}
		l.mux.mu.Unlock()
	})
	return nil
}

func (l *layer) Addr() net.Addr { return advertised{l.mux.meta.RaftAddr} }

func (l *layer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialChannel(context.Background(), l.mux.dial, string(address), chanRaft, l.group, timeout)
}

// advertised is the address a layer reports to raft: the one peers dial.
type advertised struct{ addr string }

func (a advertised) Network() string { return "tcp" }
func (a advertised) String() string  { return a.addr }

// Resolver maps Raft addresses to HTTP addresses by asking each node once over the meta
// channel, and caches the answers. It is safe for concurrent use.
type Resolver struct {
	// Dial opens the meta connections (a DialMap's, say); nil dials the Raft address
	// directly. Set it before first use.
	Dial Dialer

	mu    sync.Mutex
	cache map[string]string
}

// NewResolver returns an empty Resolver.
func NewResolver() *Resolver { return &Resolver{cache: map[string]string{}} }

// HTTPAddr returns the HTTP address (host:port) of the node at raftAddr.
func (r *Resolver) HTTPAddr(ctx context.Context, raftAddr string) (string, error) {
	r.mu.Lock()
	a, ok := r.cache[raftAddr]
	r.mu.Unlock()
	if ok {
		return a, nil
	}
	m, err := fetchMeta(ctx, r.Dial, raftAddr, 0)
	if err != nil {
		return "", err
	}
	if m.HTTPAddr == "" {
		return "", fmt.Errorf("raftnode: node %s at %s has no HTTP address", m.ID, raftAddr)
	}
	r.mu.Lock()
	r.cache[raftAddr] = m.HTTPAddr
	r.mu.Unlock()
	return m.HTTPAddr, nil
}

// Forget drops a cached address (after a failed request to it: the node may have moved).
func (r *Resolver) Forget(raftAddr string) {
	r.mu.Lock()
	delete(r.cache, raftAddr)
	r.mu.Unlock()
}
