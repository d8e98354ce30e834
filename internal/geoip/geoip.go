// Package geoip reads a MaxMind-format (GeoIP2/GeoLite2 City) database for the engine's
// geo:findCountryFromIP and geo:findCityFromIP. The database is node configuration
// (`--geoip-db`): the functions run inside the replicated state machine, so every node of
// a cluster must have the same file, or replicas would disagree. Hash identifies the file
// so operators can compare nodes (`/v1/cluster/status` shows it).
package geoip

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"

	"github.com/oschwald/maxminddb-golang/v2"
)

// DB is an open GeoIP database, read into memory. It is safe for concurrent use.
type DB struct {
	r    *maxminddb.Reader
	hash string
}

// Open reads the database at path.
func Open(path string) (*DB, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("geoip: read database: %w", err)
	}
	r, err := maxminddb.OpenBytes(b)
	if err != nil {
		return nil, fmt.Errorf("geoip: open database %s: %w", path, err)
	}
	sum := sha256.Sum256(b)
	return &DB{r: r, hash: hex.EncodeToString(sum[:])}, nil
}

// Hash is the SHA-256 of the database file, in hex.
func (d *DB) Hash() string { return d.hash }

// Close releases the database.
func (d *DB) Close() error { return d.r.Close() }

type names struct {
	Names map[string]string `maxminddb:"names"`
}

type record struct {
	Country names `maxminddb:"country"`
	City    names `maxminddb:"city"`
}

func (d *DB) lookup(ip string) record {
	var rec record
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return rec
	}
	if err := d.r.Lookup(addr.Unmap()).Decode(&rec); err != nil {
		return record{}
	}
	return rec
}

// Country is the English name of ip's country, or "" when unknown.
func (d *DB) Country(ip string) string { return d.lookup(ip).Country.Names["en"] }

// City is the English name of ip's city, or "" when unknown.
func (d *DB) City(ip string) string { return d.lookup(ip).City.Names["en"] }
