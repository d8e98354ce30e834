package expr

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// GeoIP answers the country and city of an IP address from the node's GeoIP database.
// Both answer "" for an address the database does not know (or a malformed one).
// Implementations must be deterministic and safe for concurrent use: every replica of a
// group evaluates the same calls and must get the same answers, so every node needs the
// same database file.
type GeoIP interface {
	Country(ip string) string
	City(ip string) string
}

// Env is what functions read besides the row: the stamped time of the log entry being
// applied (currentTimeMillis(), time:timestampInMilliseconds()), the time of the event
// being evaluated (eventTimestamp()), the entry's index (UUID()) and the node's GeoIP
// database. The engine keeps one Env per app and sets the per-entry fields before it
// evaluates anything; an Env is not safe for concurrent use, like the engine itself.
type Env struct {
	// App is the app's name; it seeds UUID().
	App string
	// Now is the stamped time of the entry being applied (ms).
	Now int64
	// EventTime is the time of the event being evaluated: its arrival time, or for an
	// expired window event its expiry time.
	EventTime int64
	// Index is the log index of the entry being applied.
	Index uint64
	// GeoIP is the node's GeoIP database; nil answers "" for every address.
	GeoIP GeoIP

	uuidIndex uint64 // Index the counter below counts for
	uuidSeq   uint64 // UUID() calls so far in entry uuidIndex
}

// Enter starts evaluating log entry index, stamped now.
func (e *Env) Enter(index uint64, now int64) {
	e.Index, e.Now, e.EventTime = index, now, now
}

// UUID returns the next identifier of the current entry. UUID() must not be random (every
// replica must emit the same outputs), so it is derived from the app name, the entry's log
// index and the number of UUID() calls before it in the same entry: the first 16 bytes of
// SHA-256 over them, laid out as an RFC 9562 version 8 (custom) UUID. Evaluation order is
// deterministic, so every replica numbers the calls alike; identifiers are unique per app
// as long as log indexes are.
func (e *Env) UUID() string {
	if e.uuidIndex != e.Index {
		e.uuidIndex, e.uuidSeq = e.Index, 0
	}
	e.uuidSeq++
	h := sha256.New()
	h.Write([]byte("tally-uuid\x00"))
	h.Write([]byte(e.App))
	var b [17]byte
	b[0] = 0
	binary.BigEndian.PutUint64(b[1:], e.Index)
	binary.BigEndian.PutUint64(b[9:], e.uuidSeq)
	h.Write(b[:])
	var sum [32]byte
	h.Sum(sum[:0])
	u := sum[:16]
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	var out [36]byte
	hex.Encode(out[0:8], u[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], u[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], u[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], u[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], u[10:16])
	return string(out[:])
}

// FuncEnv returns the Env the fields' expressions read (nil when none).
func (f *Fields) FuncEnv() *Env { return f.Env }

// envScope is a Scope that provides the Env its expressions' functions read.
type envScope interface {
	FuncEnv() *Env
}

// envOf is the Env of scope, or nil: then functions that need one (currentTimeMillis(),
// eventTimestamp(), UUID(), ...) are refused and geo: lookups answer "".
func envOf(scope Scope) *Env {
	if s, ok := scope.(envScope); ok {
		return s.FuncEnv()
	}
	return nil
}

// WithEnv returns scope with env as the Env its expressions' functions read, for scopes
// that do not provide one themselves (a join's, say).
func WithEnv(scope Scope, env *Env) Scope { return envWrap{Scope: scope, env: env} }

type envWrap struct {
	Scope
	env *Env
}

func (w envWrap) FuncEnv() *Env { return w.env }
