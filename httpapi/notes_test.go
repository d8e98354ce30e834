package httpapi

import (
	"strings"
	"testing"
)

// A deploy answers notes for @source declarations Tally does not run.
func TestDeployNotes(t *testing.T) {
	_, srv := newSingleNode(t, Config{})
	app := "@app:name('Notes')\n@source(type='http', receiver.url='http://0.0.0.0:8280/x', @map(type='json'))\ndefine stream Web (a int);"
	r := do(t, "POST", srv.URL+"/v1/apps", app)
	if r.code != 201 || !strings.Contains(r.body, `"notes":["2:1: stream Web: @source(type='http') is a declaration`) {
		t.Fatalf("deploy: %d %s", r.code, r.body)
	}
	r = do(t, "POST", srv.URL+"/v1/apps", "@app:name('Plain') define stream P (a int);")
	if r.code != 201 || strings.Contains(r.body, "notes") {
		t.Errorf("deploy without declarations: %d %s", r.code, r.body)
	}
}

func TestStatusGeoIPHash(t *testing.T) {
	_, srv := newSingleNode(t, Config{GeoIPSHA256: "abc123"})
	if r := do(t, "GET", srv.URL+"/v1/cluster/status", ""); !strings.Contains(r.body, `"geoip_sha256":"abc123"`) {
		t.Errorf("status: %d %s", r.code, r.body)
	}
	_, plain := newSingleNode(t, Config{})
	if r := do(t, "GET", plain.URL+"/v1/cluster/status", ""); strings.Contains(r.body, "geoip") {
		t.Errorf("status without a database: %s", r.body)
	}
}
