package engine

import "github.com/tally-db/tally/engine/expr"

// GeoIP is the node's GeoIP database the geo: functions read (see expr.GeoIP): node
// configuration that must be the same file on every node.
type GeoIP = expr.GeoIP
