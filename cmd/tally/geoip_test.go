package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-db/tally/internal/geoiptest"
)

// TestReplayGeoIP resolves IPs through --geoip-db as the API-M geo query does, and answers
// "" (here "N/A") without a database.
func TestReplayGeoIP(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "city.mmdb")
	geoiptest.Write(t, db)
	app := writeFile(t, "geo.siddhi", `@app:name('Geo')
define stream Req (userIp string, n int);
@info(name='Resolve geo attributes')
from Req
select ifThenElse(geo:findCountryFromIP(userIp) == "", "N/A", geo:findCountryFromIP(userIp)) as country,
       ifThenElse(geo:findCityFromIP(userIp) == "", "N/A", geo:findCityFromIP(userIp)) as city, n
insert into Geo;
`)
	events := writeFile(t, "events.ndjson", `{"stream":"Req","ts":1000,"data":{"userIp":"`+geoiptest.NaplesIP+`","n":1}}
{"stream":"Req","ts":1001,"data":{"userIp":"8.8.8.8","n":2}}
`)
	code, out, errOut := tally(t, "replay", "--app", app, "--events", events, "--geoip-db", db)
	if code != 0 {
		t.Fatalf("replay --geoip-db: exit %d: %s", code, errOut)
	}
	want := `{"stream":"Geo","ts":1000,"data":{"country":"Italy","city":"Naples","n":1}}
{"stream":"Geo","ts":1001,"data":{"country":"N/A","city":"N/A","n":2}}
`
	if out != want {
		t.Errorf("with the database:\n got: %s\nwant: %s", out, want)
	}
	code, out, errOut = tally(t, "replay", "--app", app, "--events", events)
	if code != 0 {
		t.Fatalf("replay: exit %d: %s", code, errOut)
	}
	if strings.Count(out, `"country":"N/A","city":"N/A"`) != 2 {
		t.Errorf("without a database every lookup must answer \"\":\n%s", out)
	}
	code, _, errOut = tally(t, "replay", "--app", app, "--events", events, "--geoip-db", filepath.Join(dir, "missing.mmdb"))
	if code == 0 || !strings.Contains(errOut, "geoip") {
		t.Errorf("a missing database: exit %d, stderr %q; want an error naming geoip", code, errOut)
	}
}

func TestServeConfigGeoIP(t *testing.T) {
	cfg, err := load(t, "--id", "n1", "--geoip-db", "/data/city.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GeoIPDB != "/data/city.mmdb" {
		t.Errorf("GeoIPDB = %q", cfg.GeoIPDB)
	}
}
