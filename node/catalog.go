package node

import (
	"cmp"
	"context"
	"slices"

	"github.com/tally-db/tally/clustermap"
	"github.com/tally-db/tally/engine"
	"github.com/tally-db/tally/siddhiql"
)

// catalog is the schemas of the cluster map's apps: an engine with every app of the map
// deployed and nothing else (no events, no state), built once per change of the map's apps
// and never changed after, so any number of readers may share it. Stand-ins read stream
// definitions and app lists from it; the controller's leader checks new apps against it.
type catalog struct {
	index    uint64   // the map's index it was built at
	apps     []appKey // the map's apps it was built from
	complete bool     // the map holds every deployed app (Map.AppsComplete)
	eng      *engine.Engine
}

type appKey struct {
	name  string
	index uint64
}

func appKeys(m clustermap.Map) []appKey {
	keys := make([]appKey, len(m.Apps))
	for i, a := range m.Apps {
		keys[i] = appKey{a.Name, a.Index}
	}
	return keys
}

// catalogFor returns the catalog of m's apps, building it when the apps changed since the
// last one. The node's catalog only moves forward: one built for a map older than the
// current catalog's is returned but not kept.
func (n *Node) catalogFor(m clustermap.Map) *catalog {
	n.catMu.Lock()
	defer n.catMu.Unlock()
	keys := appKeys(m)
	if c := n.cat.Load(); c != nil && c.complete == m.AppsComplete && slices.Equal(c.apps, keys) {
		return c
	}
	rcfg := n.replicaConfig(0)
	eng, err := engine.New(engine.Config{AggTimeZone: rcfg.AggTimeZone, GeoIP: n.cfg.GeoIP})
	if err != nil {
		n.logger.Error("cannot build the app catalog", "err", err)
		return n.cat.Load()
	}
	// In the order the map took them, as the groups deployed them.
	apps := slices.Clone(m.Apps)
	slices.SortStableFunc(apps, func(a, b clustermap.App) int { return cmp.Compare(a.Index, b.Index) })
	for _, a := range apps {
		if _, err := eng.Deploy(a.Text); err != nil {
			n.logger.Warn("an app of the cluster map does not compile here; its streams are unknown to this node", "app", a.Name, "err", err)
		}
	}
	c := &catalog{index: m.Index, apps: keys, complete: m.AppsComplete, eng: eng}
	if cur := n.cat.Load(); cur == nil || m.Index >= cur.index {
		n.cat.Store(c)
	}
	return c
}

// catalog is the latest catalog built, nil before the map is known.
func (n *Node) catalog() *catalog { return n.cat.Load() }

// StreamDef returns the definition of a stream that events can be sent to, by a bare or an
// App.Stream name, from the apps of this node's copy of the cluster map (whether or not it
// hosts any replica).
func (n *Node) StreamDef(_ context.Context, name string) (*siddhiql.StreamDef, bool) {
	c := n.catalog()
	if c == nil {
		return nil, false
	}
	return c.eng.Stream(name)
}
