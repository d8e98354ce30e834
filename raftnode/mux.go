package raftnode

import (
	"bufio"
	"context"
	"crypto/tls"
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
// share the port; the meta channel answers "who are you" for forwarding. With WithTLS the
// header travels inside TLS, and with WithClusterKey after the key's proof: nothing is
// read from a peer before it has proven itself.
const (
	muxMagic    byte = 0x54 // 'T'
	chanRaft    byte = 1
	chanMeta    byte = 2
	headerBytes      = 6
	// headerTimeout bounds how long an accepted connection may take to say what it is
	// (TLS handshake and cluster key proof included).
	headerTimeout = 5 * time.Second
	// acceptBackoffMin and acceptBackoffMax bound the wait after a failed Accept (out of
	// file descriptors, say): it doubles from the first to the second until one succeeds.
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
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
	// LeaderID and LeaderRaft name the leader this node knows for that group (Mux.ServeLeader):
	// how a node that hosts no replica of a group finds its leader.
	LeaderID   string `json:"leader_id,omitempty"`
	LeaderRaft string `json:"leader_raft,omitempty"`
}

// Mux shares one TCP listener between the Raft transports of several groups and the meta
// channel. It is safe for concurrent use.
type Mux struct {
	ln        net.Listener
	meta      Meta
	logger    *slog.Logger
	dial      Dialer // never nil
	serverTLS *tls.Config
	peer      peerSecurity
	maxConns  int
	pending   chan struct{} // a slot per connection not yet routed; nil: no cap

	mu     sync.Mutex
	layers map[uint32]*layer
	closed bool
	done   chan struct{}

	applied atomic.Pointer[func(group uint32) (uint64, bool)]        // ServeApplied
	leader  atomic.Pointer[func(group uint32) (id, raftAddr string)] // ServeLeader
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

// WithTLS makes the Raft port speak TLS only: accepted connections must complete a
// handshake with server (which should require a CA-verified client certificate,
// security.TLS.RaftServerConfig) before anything is read from them, and the mux's dials
// (Raft and meta, and those of its Resolver) use client. Either nil leaves that side plain.
func WithTLS(server, client *tls.Config) MuxOption {
	return func(m *Mux) { m.serverTLS, m.peer.client = server, client }
}

// KeyProof proves, on a fresh connection, that both ends share the cluster's key
// (*security.ClusterKey): the accepting side challenges, the dialing side responds. Both
// are bounded by a deadline the caller sets on the connection.
type KeyProof interface {
	Challenge(c net.Conn) error
	Respond(c net.Conn) error
}

// WithClusterKey makes every connection to the Raft port prove the cluster key before it
// is routed (after the TLS handshake, if any), and the mux's dials answer the proof. nil
// changes nothing.
func WithClusterKey(k KeyProof) MuxOption {
	return func(m *Mux) { m.peer.key = k }
}

// WithMaxConns caps the connections the Raft port holds before they have proven
// themselves (TLS handshake, cluster key, header): past n, Accept waits until one is routed
// or dropped, so a flood queues in the kernel's backlog rather than exhausting file
// descriptors, and each of its connections is dropped after the header deadline. Routed
// Raft connections do not count: raft pools them per peer and group. n <= 0 means no cap.
func WithMaxConns(n int) MuxOption {
	return func(m *Mux) { m.maxConns = n }
}

// peerSecurity is how a node's dials to other Raft ports prove themselves.
type peerSecurity struct {
	client *tls.Config // nil: plain TCP
	key    KeyProof    // nil: no cluster key
}

// NewMux listens on addr. meta.RaftAddr is the address other nodes dial (defaults to the
// listener's address); meta is served on the meta channel.
func NewMux(addr string, meta Meta, logger *slog.Logger, opts ...MuxOption) (*Mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raftnode: listen on raft address %s: %w", addr, err)
	}
	return newMux(ln, meta, logger, opts...), nil
}

// newMux serves the Raft port on ln.
func newMux(ln net.Listener, meta Meta, logger *slog.Logger, opts ...MuxOption) *Mux {
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
	if m.maxConns > 0 {
		m.pending = make(chan struct{}, m.maxConns)
	}
	go m.serve()
	return m
}

// Resolver returns a Resolver whose meta lookups dial like this mux: through its Dialer,
// with its TLS client configuration and cluster key.
func (m *Mux) Resolver() *Resolver {
	r := NewResolver()
	r.Dial, r.peer = m.dial, m.peer
	return r
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

// serve accepts connections until the mux is closed. A failed Accept (out of file
// descriptors, say) is retried after a wait that doubles from acceptBackoffMin to
// acceptBackoffMax, as net/http does: the port recovers once the cause goes away.
func (m *Mux) serve() {
	var backoff time.Duration
	for {
		if m.pending != nil {
			select {
			case m.pending <- struct{}{}:
			case <-m.done:
				return
			}
		}
		c, err := m.ln.Accept()
		if err != nil {
			m.release()
			select {
			case <-m.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			m.logger.Error("raft port accept failed; retrying", "err", err, "retry_in", backoff)
			select {
			case <-m.done:
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		go m.route(c)
	}
}

// release gives back an accepted connection's slot once it is routed or dropped.
func (m *Mux) release() {
	if m.pending != nil {
		<-m.pending
	}
}

// secure runs the accepting side of the port's protection on a fresh connection: the TLS
// handshake, then the cluster key challenge. It returns the connection to read from, or
// an error naming what the peer failed (the caller drops it).
func (m *Mux) secure(c net.Conn) (net.Conn, error) {
	if m.serverTLS != nil {
		tc := tls.Server(c, m.serverTLS)
		ctx, cancel := context.WithTimeout(context.Background(), headerTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		c = tc
	}
	if m.peer.key != nil {
		if err := m.peer.key.Challenge(c); err != nil {
			return nil, fmt.Errorf("cluster key: %w", err)
		}
	}
	return c, nil
}

// prelude secures an accepted connection and reads its header, all within headerTimeout,
// holding the connection's slot until then. ok is false when the connection was dropped.
func (m *Mux) prelude(c net.Conn) (net.Conn, [headerBytes]byte, bool) {
	defer m.release()
	var h [headerBytes]byte
	_ = c.SetDeadline(time.Now().Add(headerTimeout))
	sc, err := m.secure(c)
	if err != nil {
		m.logger.Warn("refusing a raft port connection", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return nil, h, false
	}
	c = sc
	if _, err := io.ReadFull(c, h[:]); err != nil || h[0] != muxMagic {
		m.logger.Warn("dropping raft port connection with a bad header", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return nil, h, false
	}
	_ = c.SetDeadline(time.Time{})
	return c, h, true
}

// route reads a connection's header and hands it to its group's layer or answers meta.
func (m *Mux) route(c net.Conn) {
	c, h, ok := m.prelude(c)
	if !ok {
		return
	}
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
		if fn := m.leader.Load(); fn != nil {
			meta.LeaderID, meta.LeaderRaft = (*fn)(group)
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

// dialChannel connects to the Raft port at addr through dial (nil: directly), secures the
// connection as peer says (TLS handshake, cluster key proof) and sends the header of a
// channel, all within timeout.
func dialChannel(ctx context.Context, dial Dialer, peer peerSecurity, addr string, kind byte, group uint32, timeout time.Duration) (net.Conn, error) {
	if dial == nil {
		dial = dialDirect
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := dial(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := dctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if peer.client != nil {
		cfg := peer.client
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			cfg = cfg.Clone()
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		c = tc
	}
	if peer.key != nil {
		if err := peer.key.Respond(c); err != nil {
			c.Close()
			return nil, fmt.Errorf("prove the cluster key to %s: %w", addr, err)
		}
	}
	var h [headerBytes]byte
	h[0], h[1] = muxMagic, kind
	binary.BigEndian.PutUint32(h[2:], group)
	if _, err := c.Write(h[:]); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// FetchMeta asks the node at raft address addr who it is, over plain TCP (a Mux's
// Resolver dials with the mux's TLS and cluster key).
func FetchMeta(ctx context.Context, addr string) (Meta, error) {
	return fetchMeta(ctx, nil, peerSecurity{}, addr, 0)
}

// ServeApplied makes the meta channel answer, for the group a request names, how far this
// node has applied that group's log: fn returns it, or false for a group the node does not
// host.
func (m *Mux) ServeApplied(fn func(group uint32) (uint64, bool)) { m.applied.Store(&fn) }

// ServeLeader makes the meta channel answer, for the group a request names, the leader this
// node knows for it: fn returns its ID and Raft address, or "" when it knows none.
func (m *Mux) ServeLeader(fn func(group uint32) (id, raftAddr string)) { m.leader.Store(&fn) }

// Probe asks the node at Raft address addr who it is and how far it has applied group's
// log, dialing as the mux's Raft connections do. It is a Prober.
func (m *Mux) Probe(ctx context.Context, addr string, group uint32) (Meta, error) {
	return fetchMeta(ctx, m.dial, m.peer, addr, group)
}

// fetchMeta is FetchMeta through dial (nil: directly), secured as peer says, about group.
func fetchMeta(ctx context.Context, dial Dialer, peer peerSecurity, addr string, group uint32) (Meta, error) {
	timeout := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	c, err := dialChannel(ctx, dial, peer, addr, chanMeta, group, timeout)
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
	return dialChannel(context.Background(), l.mux.dial, l.mux.peer, string(address), chanRaft, l.group, timeout)
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
	// peer secures the meta connections (Mux.Resolver); zero: plain TCP.
	peer peerSecurity

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
	m, err := fetchMeta(ctx, r.Dial, r.peer, raftAddr, 0)
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
