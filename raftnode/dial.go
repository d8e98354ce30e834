package raftnode

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
)

// Dialer opens a connection to another node. (*net.Dialer).DialContext is one; so is
// DialMap.DialContext.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// dialDirect dials addr itself.
func dialDirect(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// DialMap rewrites the addresses a node dials to reach other nodes: a connection meant for
// a key goes to its value instead (through a proxy that can delay or cut the link, say),
// while everything else about the request (the Raft address a peer is known by, the Host of
// an HTTP request) stays the original. Addresses not in the map are dialed as they are. A
// nil or empty map changes nothing.
type DialMap map[string]string

// ParseDialMap reads FROM=TO entries, each host:port. An entry that is malformed, maps an
// address to itself, or maps one address twice is an error naming the entry.
func ParseDialMap(entries []string) (DialMap, error) {
	m := DialMap{}
	for _, e := range entries {
		from, to, ok := strings.Cut(e, "=")
		from, to = strings.TrimSpace(from), strings.TrimSpace(to)
		if !ok || from == "" || to == "" {
			return nil, fmt.Errorf("dial map entry %q: want FROM=TO, both host:port", e)
		}
		if err := m.Add(from, to); err != nil {
			return nil, fmt.Errorf("dial map entry %q: %w", e, err)
		}
	}
	return m, nil
}

// Add maps from to to, checking both are host:port and from is not mapped yet.
func (m DialMap) Add(from, to string) error {
	for _, a := range []string{from, to} {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return fmt.Errorf("%q is not host:port", a)
		}
	}
	if from == to {
		return fmt.Errorf("%s is mapped to itself", from)
	}
	if prev, ok := m[from]; ok && prev != to {
		return fmt.Errorf("%s is already mapped to %s", from, prev)
	}
	m[from] = to
	return nil
}

// Rewrite is the address to dial for addr.
func (m DialMap) Rewrite(addr string) string {
	if to, ok := m[addr]; ok {
		return to
	}
	return addr
}

// DialContext dials the mapped address of addr (addr itself when it is not in the map).
func (m DialMap) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return dialDirect(ctx, network, m.Rewrite(addr))
}

// Dialer is m.DialContext, or nil when m is empty (dial directly).
func (m DialMap) Dialer() Dialer {
	if len(m) == 0 {
		return nil
	}
	return m.DialContext
}

// String lists the entries sorted by FROM, as FROM=TO separated by commas.
func (m DialMap) String() string {
	var b strings.Builder
	for i, from := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(from + "=" + m[from])
	}
	return b.String()
}
