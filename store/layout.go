package store

import (
	"crypto/sha256"
	"database/sql"
	"fmt"
	"math"
	"strings"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/internal/wire"
	"github.com/tally-db/tally/siddhiql"
)

// Fixed column names of Siddhi's aggregation tables, and Tally's fencing column.
const (
	colAggTimestamp   = "AGG_TIMESTAMP"
	colShardID        = "SHARD_ID"
	colEventTimestamp = "AGG_EVENT_TIMESTAMP"
	colLastEventTS    = "AGG_LAST_EVENT_TIMESTAMP"
	colIndex          = "TALLY_INDEX"
	// colKey is the primary key column standing in for the group-by columns when they
	// are too wide for the database's key (MySQL only): see layout.hashKey.
	colKey = "TALLY_KEY"
)

// keyHashBytes is the size of TALLY_KEY: a SHA-256.
const keyHashBytes = sha256.Size

// defaultStringLen is a string column's VARCHAR length when the definition gives none
// (Siddhi's, and agg.DefaultStringLength).
const defaultStringLen = 254

// noLastEventTS is agg.Row.LastEventTimestamp when no event set the latest values; it is
// stored as NULL.
const noLastEventTS = math.MinInt64

// role says where a column's value comes from in an agg.Row.
type role uint8

const (
	roleAggTS role = iota
	roleShard
	roleEventTS
	roleGroup
	roleLatest
	roleLastTS
	roleBase
	roleIndex
	roleKey
)

// column is one column of an aggregation table.
type column struct {
	name string
	typ  siddhiql.Type
	role role
	// pos is the position in Def.GroupBy, Def.Latest or Def.Bases.
	pos int
	set bool // an AGG_SET_x column
	// length is a string column's VARCHAR length (field.length, else defaultStringLen).
	length int
}

// layout is the table of one granularity of an aggregation, in Siddhi's column order:
// AGG_TIMESTAMP, SHARD_ID, [AGG_EVENT_TIMESTAMP], group-by, latest values,
// [AGG_LAST_EVENT_TIMESTAMP], base columns, TALLY_INDEX. The first nKey columns are the
// primary key. A hashed layout (hashKey) has TALLY_KEY before the group-by columns, and
// its key ends with TALLY_KEY instead of them.
type layout struct {
	def   *agg.Def
	table string
	cols  []column
	nKey  int
	// hashed: the key holds TALLY_KEY, the group-by columns are ordinary columns.
	hashed bool
	// bucket is the column a row's bucket time is judged by (Read, Purge).
	bucket string
}

// newLayout checks def's names and builds the table layout of granularity d. A name the
// store cannot hold is refused with an error wrapping ErrLimit.
func newLayout(def *agg.Def, d siddhiql.Duration) (*layout, error) {
	if def == nil {
		return nil, fmt.Errorf("store: nil aggregation definition")
	}
	if !def.HasDuration(d) {
		return nil, fmt.Errorf("store: aggregation %s does not keep %s", def.Name, d)
	}
	l := &layout{def: def, table: def.Name + "_" + d.String(), bucket: colAggTimestamp}
	if !validName(def.Name) {
		return nil, fmt.Errorf("%w: aggregation name %q cannot name a table: use letters, digits and '_'", ErrLimit, def.Name)
	}
	if len(l.table) > maxIdentLen {
		return nil, fmt.Errorf("%w: aggregation %s: its table name %s is %d characters, more than the %d a table name may have (an aggregation name may have at most %d characters)",
			ErrLimit, def.Name, l.table, len(l.table), maxIdentLen, maxIdentLen-len("_SECONDS"))
	}
	add := func(c column) { l.cols = append(l.cols, c) }
	add(column{name: colAggTimestamp, typ: siddhiql.TypeLong, role: roleAggTS})
	add(column{name: colShardID, typ: siddhiql.TypeString, role: roleShard, length: strLen(def.ShardLength)})
	if def.EventTime {
		add(column{name: colEventTimestamp, typ: siddhiql.TypeLong, role: roleEventTS})
		l.bucket = colEventTimestamp
	}
	for i, g := range def.GroupBy {
		add(column{name: g.Name, typ: g.Type, role: roleGroup, pos: i, length: strLen(g.Length)})
	}
	l.nKey = len(l.cols)
	for i, c := range def.Latest {
		add(column{name: c.Name, typ: c.Type, role: roleLatest, pos: i, length: strLen(c.Length)})
	}
	if def.HasLastEventTimestamp() {
		add(column{name: colLastEventTS, typ: siddhiql.TypeLong, role: roleLastTS})
	}
	for i, b := range def.Bases {
		add(column{name: b.Name, typ: b.Type, role: roleBase, pos: i, set: b.Kind == agg.BaseSet})
	}
	add(column{name: colIndex, typ: siddhiql.TypeLong, role: roleIndex})
	if err := l.checkNames(); err != nil {
		return nil, err
	}
	return l, nil
}

// hashKey turns l into its hashed layout: a TALLY_KEY column, the SHA-256 of the row's
// group-by values (groupHash), goes before the group-by columns and replaces them in the
// primary key; they stay in the table as ordinary NOT NULL columns.
func (l *layout) hashKey() error {
	fixed := l.nKey - len(l.def.GroupBy)
	cols := make([]column, 0, len(l.cols)+1)
	cols = append(cols, l.cols[:fixed]...)
	cols = append(cols, column{name: colKey, typ: siddhiql.TypeObject, role: roleKey})
	cols = append(cols, l.cols[fixed:]...)
	l.cols, l.nKey, l.hashed = cols, fixed+1, true
	return l.checkNames()
}

// checkNames refuses a column name the store cannot hold, or one used twice.
func (l *layout) checkNames() error {
	seen := map[string]bool{}
	for _, c := range l.cols {
		if len(c.name) > maxIdentLen {
			return fmt.Errorf("%w: %s: column name %s is %d characters, more than the %d a column name may have",
				ErrLimit, l.table, c.name, len(c.name), maxIdentLen)
		}
		if !validName(c.name) {
			return fmt.Errorf("%w: %s: column name %q is not a plain identifier", ErrLimit, l.table, c.name)
		}
		k := strings.ToUpper(c.name) // SQL column names are case-insensitive
		if seen[k] {
			return fmt.Errorf("%w: %s: column %s appears twice (an output named like a group-by or Siddhi column?)", ErrLimit, l.table, c.name)
		}
		seen[k] = true
	}
	return nil
}

// strLen is a string column's VARCHAR length: n, or defaultStringLen when unset.
func strLen(n int) int {
	if n > 0 {
		return n
	}
	return defaultStringLen
}

// maxIdentLen is the longest table or column name: MySQL's limit, applied to SQLite too so
// that an app deploys the same way on either store.
const maxIdentLen = 64

// validName reports whether s is a plain identifier, safe to quote in either dialect.
func validName(s string) bool {
	if s == "" || len(s) > maxIdentLen {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// names are the column names, in order.
func (l *layout) names() []string {
	out := make([]string, len(l.cols))
	for i, c := range l.cols {
		out[i] = c.name
	}
	return out
}

// sortKey are the columns rows are read in order of: AGG_TIMESTAMP, SHARD_ID,
// [AGG_EVENT_TIMESTAMP] and the group-by columns (the primary key unless hashed).
func (l *layout) sortKey() []string {
	var out []string
	for _, c := range l.cols {
		switch c.role {
		case roleAggTS, roleShard, roleEventTS, roleGroup:
			out = append(out, c.name)
		}
	}
	return out
}

// groupHash is TALLY_KEY: the SHA-256 of the row's group-by values, each converted to its
// column's type (floats rounded to float32, as the column stores them) and encoded by
// expr.Value.Key (type-tagged, length-prefixed), in group-by order.
func (l *layout) groupHash(r *agg.Row) ([]byte, error) {
	var b []byte
	for _, c := range l.cols {
		if c.role != roleGroup {
			continue
		}
		v := r.Group[c.pos]
		if v.IsNull() {
			return nil, fmt.Errorf("group-by column %s is null", c.name)
		}
		if v.T != c.typ {
			cv, ok := expr.Convert(v, c.typ)
			if !ok {
				return nil, fmt.Errorf("column %s is %s, the row holds a %s", c.name, c.typ, v.T)
			}
			v = cv
		}
		if v.T == siddhiql.TypeFloat {
			v = expr.Float(float32(v.F))
		}
		b = v.Key(b)
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}

// appendArgs appends the bind values of r's columns under shard.
func (l *layout) appendArgs(args []any, shard string, r *agg.Row) ([]any, error) {
	d := l.def
	if len(r.Group) != len(d.GroupBy) || len(r.Bases) != len(d.Bases) || (len(d.Latest) > 0 && len(r.Latest) != len(d.Latest)) {
		return nil, fmt.Errorf("row has %d group, %d latest and %d base values; the aggregation %d, %d and %d",
			len(r.Group), len(r.Latest), len(r.Bases), len(d.GroupBy), len(d.Latest), len(d.Bases))
	}
	if r.Index > math.MaxInt64 {
		return nil, fmt.Errorf("row index %d does not fit %s", r.Index, colIndex)
	}
	for _, c := range l.cols {
		var v any
		var err error
		switch c.role {
		case roleAggTS:
			v = r.AggTimestamp
		case roleShard:
			v = shard
		case roleEventTS:
			v = r.EventTimestamp
		case roleGroup:
			if r.Group[c.pos].IsNull() {
				return nil, fmt.Errorf("group-by column %s is null", c.name)
			}
			v, err = bindValue(c, r.Group[c.pos])
		case roleLatest:
			v, err = bindValue(c, r.Latest[c.pos])
		case roleLastTS:
			if r.LastEventTimestamp != noLastEventTS {
				v = r.LastEventTimestamp
			}
		case roleBase:
			if c.set {
				var s agg.Set
				if c.pos < len(r.Sets) {
					s = r.Sets[c.pos]
				}
				v = encodeSet(s)
			} else {
				v, err = bindValue(c, r.Bases[c.pos])
			}
		case roleIndex:
			v = int64(r.Index)
		case roleKey:
			v, err = l.groupHash(r)
		}
		if err != nil {
			return nil, err
		}
		args = append(args, v)
	}
	return args, nil
}

// bindValue is v as a driver value for column c: nil for null, int64 for int, long and
// bool, float64 for float and double, string, and []byte for object.
func bindValue(c column, v expr.Value) (any, error) {
	if v.IsNull() {
		return nil, nil
	}
	if v.T != c.typ {
		cv, ok := expr.Convert(v, c.typ)
		if !ok {
			return nil, fmt.Errorf("column %s is %s, the row holds a %s", c.name, c.typ, v.T)
		}
		v = cv
	}
	switch c.typ {
	case siddhiql.TypeString:
		return v.S, nil
	case siddhiql.TypeFloat, siddhiql.TypeDouble:
		return v.F, nil
	case siddhiql.TypeObject:
		return []byte(v.S), nil
	default:
		return v.I, nil
	}
}

// encodeSet is a distinctCount set as stored in AGG_SET_x: with internal/wire, the member
// count then each member (a type-tagged expr.Value key) in sorted order.
func encodeSet(s agg.Set) []byte {
	var w wire.Writer
	members := agg.SetMembers(s)
	w.Uvarint(uint64(len(members)))
	for _, m := range members {
		w.String(m)
	}
	return w.Buf
}

// decodeSet reads a set written by encodeSet; NULL is the empty set.
func decodeSet(b []byte) (agg.Set, error) {
	s := agg.Set{}
	if len(b) == 0 {
		return s, nil
	}
	r := wire.NewReader(b)
	n := r.Count(1)
	for range n {
		s[r.String()] = struct{}{}
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the set's %d members", r.Len(), n)
	}
	return s, nil
}

// scanner holds the scan destinations of one row: SHARD_ID, then l.cols with SHARD_ID
// in its place.
type scanner struct {
	l     *layout
	dests []any
	ints  []sql.NullInt64
	flts  []sql.NullFloat64
	strs  []sql.NullString
	blobs [][]byte
}

func newScanner(l *layout) *scanner {
	n := len(l.cols)
	s := &scanner{l: l, dests: make([]any, n), ints: make([]sql.NullInt64, n), flts: make([]sql.NullFloat64, n),
		strs: make([]sql.NullString, n), blobs: make([][]byte, n)}
	for i, c := range l.cols {
		switch {
		case c.set || c.typ == siddhiql.TypeObject:
			s.dests[i] = &s.blobs[i]
		case c.typ == siddhiql.TypeString:
			s.dests[i] = &s.strs[i]
		case c.typ == siddhiql.TypeFloat || c.typ == siddhiql.TypeDouble:
			s.dests[i] = &s.flts[i]
		default:
			s.dests[i] = &s.ints[i]
		}
	}
	return s
}

// value is column i of the scanned row as a typed value (float columns rounded to float32,
// as the column stores them).
func (s *scanner) value(i int) expr.Value {
	c := s.l.cols[i]
	switch {
	case c.typ == siddhiql.TypeObject:
		if s.blobs[i] == nil {
			return expr.Null
		}
		return expr.Value{T: c.typ, S: string(s.blobs[i])}
	case c.typ == siddhiql.TypeString:
		if !s.strs[i].Valid {
			return expr.Null
		}
		return expr.String(s.strs[i].String)
	case c.typ == siddhiql.TypeFloat:
		if !s.flts[i].Valid {
			return expr.Null
		}
		return expr.Float(float32(s.flts[i].Float64))
	case c.typ == siddhiql.TypeDouble:
		if !s.flts[i].Valid {
			return expr.Null
		}
		return expr.Double(s.flts[i].Float64)
	case c.typ == siddhiql.TypeBool:
		if !s.ints[i].Valid {
			return expr.Null
		}
		return expr.Bool(s.ints[i].Int64 != 0)
	default: // int, long
		if !s.ints[i].Valid {
			return expr.Null
		}
		return expr.Value{T: c.typ, I: s.ints[i].Int64}
	}
}

// row builds the scanned row.
func (s *scanner) row() (ShardRow, error) {
	d := s.l.def
	var (
		shard          string
		aggTS, eventTS int64
		lastTS         int64 = noLastEventTS
		index          int64
		latest         []expr.Value
		sets           []agg.Set
		nullKey        string
	)
	group, bases := make([]expr.Value, len(d.GroupBy)), make([]expr.Value, len(d.Bases))
	if len(d.Latest) > 0 {
		latest = make([]expr.Value, len(d.Latest))
	}
	for i, c := range s.l.cols {
		switch c.role {
		case roleAggTS, roleEventTS, roleIndex:
			if !s.ints[i].Valid {
				nullKey = c.name
			}
			switch c.role {
			case roleAggTS:
				aggTS = s.ints[i].Int64
			case roleEventTS:
				eventTS = s.ints[i].Int64
			default:
				index = s.ints[i].Int64
			}
		case roleShard:
			shard = s.strs[i].String
			if !s.strs[i].Valid {
				nullKey = c.name
			}
		case roleGroup:
			group[c.pos] = s.value(i)
		case roleLatest:
			latest[c.pos] = s.value(i)
		case roleLastTS:
			if s.ints[i].Valid {
				lastTS = s.ints[i].Int64
			}
		case roleBase:
			if !c.set {
				bases[c.pos] = s.value(i)
				continue
			}
			set, err := decodeSet(s.blobs[i])
			if err != nil {
				return ShardRow{}, fmt.Errorf("column %s: %w", c.name, err)
			}
			if sets == nil {
				sets = make([]agg.Set, len(d.Bases))
			}
			sets[c.pos] = set
		}
	}
	if nullKey != "" {
		return ShardRow{}, fmt.Errorf("column %s is null", nullKey)
	}
	if index < 0 {
		return ShardRow{}, fmt.Errorf("%s is negative (%d)", colIndex, index)
	}
	return ShardRow{Shard: shard, Row: d.NewStoredRow(aggTS, eventTS, group, latest, lastTS, bases, sets, uint64(index))}, nil
}
