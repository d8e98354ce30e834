package engine

import (
	"testing"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/geoiptest"
)

// TestRestoreKeepsGeoIP: an engine restored from a state still answers geo: lookups from its
// node's database, as the engine that never stopped does (a replica restored from a snapshot
// must not answer "" where the others answer a country).
func TestRestoreKeepsGeoIP(t *testing.T) {
	db := geoiptest.Open(t)
	app := `@app:name('G') define stream In (ip string);
from In select geo:findCountryFromIP(ip) as country insert into Out;`
	newEngine := func() *Engine {
		e, err := New(Config{AggTimeZone: "GMT", GeoIP: db})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	live := newEngine()
	if _, err := live.Deploy(app); err != nil {
		t.Fatal(err)
	}
	state, err := live.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	restored := newEngine()
	if err := restored.UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	for name, e := range map[string]*Engine{"live": live, "restored": restored} {
		outs, err := e.Apply(1, 1000, "In", []expr.Row{{expr.String(geoiptest.NaplesIP)}})
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) != 1 || outs[0].Row[0].String() != `"`+geoiptest.Country+`"` {
			t.Errorf("%s engine: outputs %+v, want country %s", name, outs, geoiptest.Country)
		}
	}
}
