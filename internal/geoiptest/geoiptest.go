// Package geoiptest writes a tiny MaxMind-format GeoIP City database for tests: it maps
// NaplesNet (which holds NaplesIP) to Naples, Italy, and knows no other address.
package geoiptest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/tally-db/tally/internal/geoip"
)

// The test database's one network and an address in it.
const (
	NaplesNet = "151.1.1.0/24"
	NaplesIP  = "151.1.1.1"
	Country   = "Italy"
	City      = "Naples"
)

// Write writes the test database to path, failing t on any error.
func Write(t testing.TB, path string) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoIP2-City", RecordSize: 24})
	if err != nil {
		t.Fatalf("geoiptest: new tree: %v", err)
	}
	_, network, err := net.ParseCIDR(NaplesNet)
	if err != nil {
		t.Fatal(err)
	}
	rec := mmdbtype.Map{
		"country": mmdbtype.Map{"iso_code": mmdbtype.String("IT"), "names": mmdbtype.Map{"en": mmdbtype.String(Country)}},
		"city":    mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(City)}},
	}
	if err := tree.Insert(network, rec); err != nil {
		t.Fatalf("geoiptest: insert: %v", err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("geoiptest: %v", err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		f.Close()
		t.Fatalf("geoiptest: write %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("geoiptest: close %s: %v", path, err)
	}
}

// Open writes the test database to a temporary file and opens it; it is closed when the
// test ends.
func Open(t testing.TB) *geoip.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "city.mmdb")
	Write(t, path)
	db, err := geoip.Open(path)
	if err != nil {
		t.Fatalf("geoiptest: open %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
