package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/internal/geoiptest"
	"github.com/tally-db/tally/raftnode"
)

// The node's GeoIP database reaches the replicated engine: an ingested Naples address
// comes out of the geo query as Italy, Naples.
func TestGeoIPThroughTheLog(t *testing.T) {
	db := geoiptest.Open(t)
	n, srv := newSingleNode(t, Config{}, func(c *raftnode.Config) { c.GeoIP = db })
	deployApp(t, srv.URL, `@app:name('Geo')
define stream Req (userIp string);
from Req select geo:findCountryFromIP(userIp) as country, geo:findCityFromIP(userIp) as city insert into Geo;`)
	if r := do(t, http.MethodPost, srv.URL+"/v1/streams/Req/events", `{"userIp":"`+geoiptest.NaplesIP+`"}`); r.code != http.StatusOK {
		t.Fatalf("ingest: %d %s", r.code, r.body)
	}
	outs, err := n.FSM().OutputsAfter("Geo", fsm.OutPos{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 1 || !strings.Contains(string(outs[0].Data), `"country":"Italy","city":"Naples"`) {
		var got []string
		for _, o := range outs {
			got = append(got, string(o.Data))
		}
		t.Fatalf("outputs of Geo = %q, want one with Italy, Naples", got)
	}
}
