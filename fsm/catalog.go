package fsm

import (
	"fmt"
	"maps"
	"slices"

	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/siddhiql"
)

// Catalog is an immutable picture of what request handlers ask the FSM about the deployed
// apps: the stream definitions events can be sent to (by every name the engine resolves),
// the output streams, the app names, the shard ID and the flushed index. The FSM builds a
// new one inside Apply whenever one of these changes (deploy, undeploy, shard, flushed) and
// on Restore, and publishes it atomically, so readers never wait behind Apply's lock. It is
// derived from the state and never encoded. Its methods are safe for concurrent use; a nil
// Catalog knows nothing.
type Catalog struct {
	streams map[string]*siddhiql.StreamDef // by every name Engine.Stream resolves
	// ambiguous holds, for a bare name several apps define, the engine's error naming them.
	ambiguous map[string]error
	outputs   map[string]bool // streams some query inserts into
	apps      []string        // sorted
	shard     string
	flushed   uint64
}

// buildCatalog derives a catalog from e. It asks e itself for every candidate name (each
// stream an app defines, bare and as App.Stream; each stream a query inserts into), so the
// catalog answers exactly as e.Stream and e.IsOutputStream would: Stream resolves no name
// outside these candidates. The caller holds the lock that guards e.
func buildCatalog(e *engine.Engine, shard string, flushed uint64) *Catalog {
	c := &Catalog{streams: map[string]*siddhiql.StreamDef{}, ambiguous: map[string]error{}, outputs: map[string]bool{}, shard: shard, flushed: flushed}
	for _, a := range e.Apps() {
		c.apps = append(c.apps, a.Name)
		if a.Parsed == nil {
			continue
		}
		for _, sd := range a.Parsed.Streams {
			for _, name := range []string{sd.Name, a.Name + "." + sd.Name} {
				if def, ok := e.Stream(name); ok {
					c.streams[name] = def
				} else if _, _, err := e.ResolveStream(name); err != nil {
					c.ambiguous[name] = err
				}
			}
		}
		into := func(qs []*siddhiql.Query) {
			for _, q := range qs {
				if q.Into != "" && !siddhiql.IsInner(q.Into) && e.IsOutputStream(q.Into) {
					c.outputs[q.Into] = true
				}
			}
		}
		into(a.Parsed.Queries)
		for _, p := range a.Parsed.Partitions {
			into(p.Queries)
		}
	}
	return c
}

// withProgress is c with another shard ID and flushed index; the maps are shared, as
// neither is ever written after building.
func (c *Catalog) withProgress(shard string, flushed uint64) *Catalog {
	n := *c
	n.shard, n.flushed = shard, flushed
	return &n
}

// StreamDef returns the definition of the stream that events sent to name reach (a bare or
// an App.Stream name), as engine.Engine.Stream does. The definition must not be modified.
func (c *Catalog) StreamDef(name string) (*siddhiql.StreamDef, bool) {
	if c == nil {
		return nil, false
	}
	def, ok := c.streams[name]
	return def, ok
}

// CheckStream returns nil if events can be sent to name, otherwise the error (wrapping
// engine.ErrUnknownStream) the engine would give, naming the apps of an ambiguous bare name.
func (c *Catalog) CheckStream(name string) error {
	if _, ok := c.StreamDef(name); ok {
		return nil
	}
	if c != nil && c.ambiguous[name] != nil {
		return c.ambiguous[name]
	}
	return fmt.Errorf("%w: %s", engine.ErrUnknownStream, name)
}

// IsOutputStream reports whether some query of a deployed app inserts into stream.
func (c *Catalog) IsOutputStream(stream string) bool { return c != nil && c.outputs[stream] }

// Apps lists the deployed apps' names, sorted.
func (c *Catalog) Apps() []string {
	if c == nil {
		return nil
	}
	return slices.Clone(c.apps)
}

// HasApp reports whether an app of that name is deployed.
func (c *Catalog) HasApp(name string) bool {
	if c == nil {
		return false
	}
	_, found := slices.BinarySearch(c.apps, name)
	return found
}

// Streams lists the names StreamDef resolves, sorted.
func (c *Catalog) Streams() []string {
	if c == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(c.streams))
}

// ShardID is the group's shard ID ("" until one was replicated) and the log index through
// which rows are in the shared store, as of the catalog.
func (c *Catalog) ShardID() (shard string, flushed uint64) {
	if c == nil {
		return "", 0
	}
	return c.shard, c.flushed
}

// Catalog returns the catalog as of the last entry applied (or snapshot restored) that
// changed it. It takes no lock: it never waits behind Apply.
func (f *FSM) Catalog() *Catalog { return f.catalog.Load() }

// publishLocked rebuilds and publishes the catalog. f.mu must be held for writing.
func (f *FSM) publishLocked() {
	f.catalog.Store(buildCatalog(f.eng, f.shard, f.flushed))
}

// publishProgressLocked publishes the catalog with the current shard ID and flushed index.
// f.mu must be held for writing.
func (f *FSM) publishProgressLocked() {
	if c := f.catalog.Load(); c != nil {
		f.catalog.Store(c.withProgress(f.shard, f.flushed))
		return
	}
	f.publishLocked()
}
