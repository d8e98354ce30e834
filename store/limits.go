package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/siddhiql"
)

// ErrLimit is wrapped by errors for an aggregation the store cannot hold: a table or
// column name longer than 64 characters, or (MySQL) a primary key or row wider than InnoDB
// allows. Such an app is refused at deploy; retrying cannot help.
var ErrLimit = errors.New("store: beyond the store's limits")

// MySQL's InnoDB limits (utf8mb4 counts 4 bytes a character).
const (
	mysqlMaxKeyBytes = 3072
	mysqlMaxRowBytes = 65535
	mysqlCharBytes   = 4
)

// CheckDef reports, without touching the database, whether the store can hold def's tables:
// every name fits (64 characters at most, letters, digits and '_') and, on MySQL, the
// primary key and row fit InnoDB. The error wraps ErrLimit and names the limit.
func (s *sqlStore) CheckDef(def *agg.Def) error {
	if def == nil {
		return fmt.Errorf("store: check: nil aggregation definition")
	}
	for _, d := range def.Durations {
		if _, err := s.layout(def, d); err != nil {
			return err
		}
	}
	return nil
}

// layout is the table layout of granularity d of def on this store's database.
func (s *sqlStore) layout(def *agg.Def, d siddhiql.Duration) (*layout, error) {
	l, err := newLayout(def, d)
	if err != nil {
		return nil, err
	}
	if err := s.dia.fit(l); err != nil {
		return nil, err
	}
	return l, nil
}

// fit: SQLite has no limit a layout can reach.
func (sqliteDialect) fit(*layout) error { return nil }

// fit checks InnoDB's primary key (3072 bytes) and row (65535 bytes, BLOBs aside) sizes.
// Group-by columns too wide for the key are replaced in it by TALLY_KEY (hashKey); only
// when the key is still too wide, or the row is, is the layout refused.
func (*mysqlDialect) fit(l *layout) error {
	for _, c := range l.cols {
		if c.role == roleGroup && (c.set || c.typ == siddhiql.TypeObject) {
			return fmt.Errorf("%w: %s: group-by column %s is an object, which a MySQL primary key cannot hold", ErrLimit, l.table, c.name)
		}
	}
	if mysqlKeyBytes(l) > mysqlMaxKeyBytes {
		if err := l.hashKey(); err != nil {
			return err
		}
	}
	row := 0
	for _, c := range l.cols {
		n := mysqlBytes(c)
		if c.typ == siddhiql.TypeString {
			n += 2 // length bytes
		}
		row += n
	}
	row += (len(l.cols) + 7) / 8 // null flags
	switch key := mysqlKeyBytes(l); {
	case key > mysqlMaxKeyBytes:
		return fmt.Errorf("%w: %s: the primary key (%s) takes up to %d bytes, more than the %d MySQL allows: "+
			"lower the string columns' field.length (4 bytes a character)", ErrLimit, l.table, strings.Join(l.names()[:l.nKey], ", "), key, mysqlMaxKeyBytes)
	case row > mysqlMaxRowBytes:
		return fmt.Errorf("%w: %s: a row takes up to %d bytes, more than the %d MySQL allows: lower the string columns' field.length (4 bytes a character)",
			ErrLimit, l.table, row, mysqlMaxRowBytes)
	}
	return nil
}

// mysqlKeyBytes is the most bytes l's primary key takes.
func mysqlKeyBytes(l *layout) int {
	key := 0
	for _, c := range l.cols[:l.nKey] {
		key += mysqlBytes(c)
	}
	return key
}

// mysqlBytes is the most bytes column c takes in a MySQL row or key (BLOBs: their pointer).
func mysqlBytes(c column) int {
	if c.role == roleKey {
		return keyHashBytes
	}
	if c.set {
		return 10
	}
	switch c.typ {
	case siddhiql.TypeString:
		return strLen(c.length) * mysqlCharBytes
	case siddhiql.TypeInt, siddhiql.TypeFloat:
		return 4
	case siddhiql.TypeBool:
		return 1
	case siddhiql.TypeObject:
		return 10
	default: // long, double
		return 8
	}
}

// narrowColumns: SQLite's TEXT has no length.
func (sqliteDialect) narrowColumns(context.Context, *sql.DB, *layout) (string, error) { return "", nil }

// narrowColumns compares the VARCHAR lengths of the existing table with l's.
func (m *mysqlDialect) narrowColumns(ctx context.Context, db *sql.DB, l *layout) (string, error) {
	rows, err := db.QueryContext(ctx, "SELECT COLUMN_NAME, CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS "+
		"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND DATA_TYPE IN ('varchar', 'char')", l.table)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	have := map[string]int64{}
	for rows.Next() {
		var name string
		var n sql.NullInt64
		if err := rows.Scan(&name, &n); err != nil {
			return "", err
		}
		have[strings.ToUpper(name)] = n.Int64
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	var parts []string
	for i, c := range l.cols {
		if c.typ != siddhiql.TypeString {
			continue
		}
		if n, ok := have[strings.ToUpper(c.name)]; ok && n < int64(strLen(c.length)) {
			mod := "MODIFY " + m.quote(c.name) + " " + m.colType(c)
			if i < l.nKey || c.role == roleGroup {
				mod += " NOT NULL"
			}
			parts = append(parts, mod)
		}
	}
	if len(parts) == 0 {
		return "", nil
	}
	return "ALTER TABLE " + m.quote(l.table) + " " + strings.Join(parts, ", "), nil
}
