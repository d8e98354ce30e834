package main

import (
	"log/slog"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/geoip"
)

// openGeoIP opens the --geoip-db database; with no path it returns a nil GeoIP (the geo:
// functions answer ""). The returned func closes it.
func openGeoIP(path string, logger *slog.Logger) (expr.GeoIP, func(), error) {
	if path == "" {
		return nil, func() {}, nil
	}
	db, err := geoip.Open(path)
	if err != nil {
		return nil, nil, err
	}
	if logger != nil {
		logger.Info("GeoIP database loaded: every node must have the same file", "path", path, "sha256", db.Hash())
	}
	return db, func() { _ = db.Close() }, nil
}
