package node

import (
	"testing"
	"time"

	"github.com/tally-db/tally/clustermap"
)

// TestNodes_EvenSpread: six nodes joining one after another, six groups of three: placement
// ends with exactly three replicas on every node (the mean is whole).
func TestNodes_EvenSpread(t *testing.T) {
	c := newTestCluster(t, 6)
	c.start("n1", "", 3)
	c.waitMap("n1", 10*time.Second, "the cluster created", func(m clustermap.Map) bool { return m.Initialized() })
	ids := []string{"n2", "n3", "n4", "n5", "n6"}
	for _, id := range ids {
		c.start(id, "", 3)
	}
	c.waitMap("n1", 90*time.Second, "three replicas on every node", func(m clustermap.Map) bool {
		if !settled(3)(m) {
			return false
		}
		for _, id := range append([]string{"n1"}, ids...) {
			if m.ReplicasOn(id) != 3 {
				return false
			}
		}
		return true
	})
}
