package geoip_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tally-db/tally/internal/geoip"
	"github.com/tally-db/tally/internal/geoiptest"
)

func TestLookup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "city.mmdb")
	geoiptest.Write(t, path)
	db, err := geoip.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cases := []struct{ ip, country, city string }{
		{geoiptest.NaplesIP, geoiptest.Country, geoiptest.City},
		{"::ffff:" + geoiptest.NaplesIP, geoiptest.Country, geoiptest.City},
		{"8.8.8.8", "", ""},
		{"not an ip", "", ""},
		{"", "", ""},
	}
	for _, c := range cases {
		if got := db.Country(c.ip); got != c.country {
			t.Errorf("Country(%q) = %q, want %q", c.ip, got, c.country)
		}
		if got := db.City(c.ip); got != c.city {
			t.Errorf("City(%q) = %q, want %q", c.ip, got, c.city)
		}
	}
	if len(db.Hash()) != 64 {
		t.Errorf("Hash() = %q, want 64 hex digits", db.Hash())
	}
	again, err := geoip.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.Hash() != db.Hash() {
		t.Errorf("the same file hashes to %s and %s", db.Hash(), again.Hash())
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := geoip.Open(filepath.Join(dir, "missing.mmdb")); err == nil {
		t.Error("Open of a missing file succeeded")
	}
	bad := filepath.Join(dir, "bad.mmdb")
	if err := os.WriteFile(bad, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := geoip.Open(bad); err == nil {
		t.Error("Open of a file that is not a MaxMind database succeeded")
	}
}
