package node

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/tally-db/tally/clustermap"
)

// catalogMap is a map holding apps copies of testApp, each with its own names.
func catalogMap(apps int) clustermap.Map {
	m := clustermap.Map{Index: uint64(apps + 1), Replicas: 1, AppsComplete: true}
	for i := range apps {
		r := strings.NewReplacer("NApp", fmt.Sprintf("App%03d", i), "stream S ", fmt.Sprintf("stream S%03d ", i), "from S\n", fmt.Sprintf("from S%03d\n", i), "aggregation A\n", fmt.Sprintf("aggregation A%03d\n", i))
		m.Apps = append(m.Apps, clustermap.App{Name: fmt.Sprintf("App%03d", i), Text: r.Replace(testApp), Index: uint64(i + 1)})
	}
	return m
}

// TestCatalog_FromMap: the catalog knows every stream of the map's apps, by bare and by
// App.Stream name, is built again only when the apps change, and never goes back to an
// older map.
func TestCatalog_FromMap(t *testing.T) {
	n := &Node{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	m := catalogMap(3)
	c := n.catalogFor(m)
	for _, name := range []string{"S000", "S002", "App001.S001"} {
		if d, ok := n.StreamDef(t.Context(), name); !ok || len(d.Attributes) != 3 {
			t.Errorf("stream %s: %v, %v", name, d, ok)
		}
	}
	if _, ok := n.StreamDef(t.Context(), "S"); ok {
		t.Error("the catalog knows a stream no app of the map defines")
	}
	m.Index++ // a change of something else: the same catalog
	if again := n.catalogFor(m); again != c {
		t.Error("the catalog was built again though the apps did not change")
	}
	newer := catalogMap(2)
	newer.Index = m.Index + 5
	if n.catalogFor(newer); n.catalog().index != newer.Index {
		t.Fatal("the catalog of a newer map was not kept")
	}
	if _, ok := n.StreamDef(t.Context(), "S002"); ok {
		t.Error("an app the newer map dropped is still in the catalog")
	}
	n.catalogFor(m) // older than the kept one
	if n.catalog().index != newer.Index {
		t.Error("the catalog went back to an older map")
	}
}

// BenchmarkCatalog builds the catalog of a map holding 20 apps (once per change of the
// map's apps).
func BenchmarkCatalog(b *testing.B) {
	n := &Node{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	m := catalogMap(20)
	for i := 0; b.Loop(); i++ {
		m.Apps[0].Index = uint64(100 + i) // a change: built again
		m.Index = uint64(1000 + i)
		n.catalogFor(m)
	}
}
