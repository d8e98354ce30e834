package proxy

import (
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Net is the set of proxied links of a cluster. A link carries the connections one endpoint
// (from) opens to another (to) for one purpose (kind, e.g. "raft", "http", "store"); the
// endpoints are names such as "n1" or "db". Faults accumulate: a partition on top of a
// one-way cut leaves both in place, and only Heal clears them. Its methods are safe for
// concurrent use.
type Net struct {
	seed   uint64
	logger *slog.Logger

	mu     sync.Mutex
	links  []link
	closed bool
}

type link struct {
	from, to, kind string
	p              *Proxy
}

// NewNet returns an empty Net. seed seeds every link's randomness (each link's seed is
// derived from seed and the link's name). A nil logger discards the logs.
func NewNet(seed uint64, logger *slog.Logger) *Net {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Net{seed: seed, logger: logger}
}

// LinkName is the name Net gives the proxy of the link from → to of kind: "from->to/kind".
func LinkName(from, to, kind string) string { return from + "->" + to + "/" + kind }

// Add starts the proxy of a new link: the connections from opens to to for kind, which the
// proxy forwards to target. from must dial the returned proxy's Addr instead of target.
// Adding the same (from, to, kind) twice is an error.
func (n *Net) Add(from, to, kind, target string) (*Proxy, error) {
	if from == "" || to == "" || kind == "" || from == to {
		return nil, fmt.Errorf("proxy: bad link %q", LinkName(from, to, kind))
	}
	name := LinkName(from, to, kind)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("proxy: link %s: net closed", name)
	}
	for _, l := range n.links {
		if l.from == from && l.to == to && l.kind == kind {
			return nil, fmt.Errorf("proxy: link %s already exists", name)
		}
	}
	p, err := Listen(name, target, linkSeed(n.seed, name), n.logger)
	if err != nil {
		return nil, err
	}
	n.links = append(n.links, link{from: from, to: to, kind: kind, p: p})
	return p, nil
}

// Link returns the proxy of the link from → to of kind, or nil.
func (n *Net) Link(from, to, kind string) *Proxy {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range n.links {
		if l.from == from && l.to == to && l.kind == kind {
			return l.p
		}
	}
	return nil
}

// Links returns every link's proxy, in the order they were added.
func (n *Net) Links() []*Proxy {
	n.mu.Lock()
	defer n.mu.Unlock()
	ps := make([]*Proxy, len(n.links))
	for i, l := range n.links {
		ps[i] = l.p
	}
	return ps
}

// Partition splits the endpoints into sides: every link whose two endpoints are on
// different sides is blackholed in both directions. Links with an endpoint on no side (for
// instance the database, "db") are left alone, and so are links within a side. An endpoint
// named on two sides is a programming error: Partition panics.
func (n *Net) Partition(sides ...[]string) {
	side := map[string]int{}
	for i, s := range sides {
		for _, e := range s {
			if j, ok := side[e]; ok && j != i {
				panic(fmt.Sprintf("proxy: Partition: %q is on sides %d and %d", e, j, i))
			}
			side[e] = i
		}
	}
	cut := n.blackhole(func(l link) bool {
		a, okA := side[l.from]
		b, okB := side[l.to]
		return okA && okB && a != b
	})
	n.logger.Info("fault: partition", "sides", sides, "links", cut)
}

// Isolate cuts node off: every link from node or to node is blackholed in both directions,
// or only the links of the given kinds (Isolate("n1", "raft", "http") keeps n1's database
// links working; Isolate("n1") cuts them too).
func (n *Net) Isolate(node string, kinds ...string) {
	cut := n.blackhole(func(l link) bool {
		return (l.from == node || l.to == node) && kindIn(l.kind, kinds)
	})
	n.logger.Info("fault: isolate", "node", node, "kinds", kinds, "links", cut)
}

// CutOneWay blackholes, in both directions, every link from → to (of the given kinds, or
// all): the connections from opens to to carry nothing, while the connections to opens to
// from keep working. See the package documentation for why a one-way cut of a TCP link
// is the cut of one initiator's connections.
func (n *Net) CutOneWay(from, to string, kinds ...string) {
	cut := n.blackhole(func(l link) bool {
		return l.from == from && l.to == to && kindIn(l.kind, kinds)
	})
	n.logger.Info("fault: cut one way", "from", from, "to", to, "kinds", kinds, "links", cut)
}

// CutKind blackholes, in both directions, every link of kind (e.g. every "store" link: the
// database becomes unreachable from every node).
func (n *Net) CutKind(kind string) {
	cut := n.blackhole(func(l link) bool { return l.kind == kind })
	n.logger.Info("fault: cut kind", "kind", kind, "links", cut)
}

// Reset resets the connections of every link of the given kinds (or all) and, until Heal,
// every new one (see Proxy.Reset).
func (n *Net) Reset(kinds ...string) {
	ls := n.match(func(l link) bool { return kindIn(l.kind, kinds) })
	for _, l := range ls {
		l.p.Reset()
	}
	n.logger.Info("fault: reset", "kinds", kinds, "links", names(ls))
}

// Flaky makes every link of the given kinds (or all) delay each chunk by delay plus
// uniform[0, jitter) and reset its connection with probability prob. Zero values remove
// the corresponding fault from those links.
func (n *Net) Flaky(prob float64, delay, jitter time.Duration, kinds ...string) {
	ls := n.match(func(l link) bool { return kindIn(l.kind, kinds) })
	for _, l := range ls {
		l.p.SetDelay(delay, jitter)
		l.p.SetFlaky(prob)
	}
	n.logger.Info("fault: flaky", "prob", prob, "delay", delay, "jitter", jitter, "kinds", kinds, "links", names(ls))
}

// Heal clears every fault of every link (see Proxy.Heal).
func (n *Net) Heal() {
	ls := n.match(func(link) bool { return true })
	for _, l := range ls {
		l.p.Heal()
	}
	n.logger.Info("heal all links", "links", len(ls))
}

// Close closes every link's proxy. Add fails afterwards.
func (n *Net) Close() error {
	n.mu.Lock()
	n.closed = true
	ls := slices.Clone(n.links)
	n.mu.Unlock()
	var errs []error
	for _, l := range ls {
		errs = append(errs, l.p.Close())
	}
	return errors.Join(errs...)
}

// blackhole blackholes both directions of the links keep selects and returns their names.
func (n *Net) blackhole(keep func(link) bool) []string {
	ls := n.match(keep)
	for _, l := range ls {
		l.p.Blackhole(Both)
	}
	return names(ls)
}

// match returns the links keep selects.
func (n *Net) match(keep func(link) bool) []link {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ls []link
	for _, l := range n.links {
		if keep(l) {
			ls = append(ls, l)
		}
	}
	return ls
}

func names(ls []link) []string {
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.p.Name()
	}
	return s
}

// kindIn reports whether kind is one of kinds, or kinds is empty (every kind).
func kindIn(kind string, kinds []string) bool {
	return len(kinds) == 0 || slices.Contains(kinds, kind)
}

// linkSeed derives a link's seed from the net's seed and the link's name, so a link's
// randomness does not depend on the order links were added in.
func linkSeed(seed uint64, name string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	x := seed ^ h.Sum64()
	// splitmix64 finaliser: nearby seeds give unrelated streams.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
