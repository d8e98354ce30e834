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
		l, err := newLayout(def, d)
		if err != nil {
			return err
		}
		if err := s.dia.limits(l); err != nil {
			return err
		}
	}
	return nil
}

// limits: SQLite has no limit a layout can reach.
func (sqliteDialect) limits(*layout) error { return nil }

// limits checks InnoDB's primary key (3072 bytes) and row (65535 bytes, BLOBs aside) sizes.
func (*mysqlDialect) limits(l *layout) error {
	key, row := 0, 0
	for i, c := range l.cols {
		n := mysqlBytes(c)
		if i < l.nKey {
			if c.set || c.typ == siddhiql.TypeObject {
				return fmt.Errorf("%w: %s: group-by column %s is an object, which a MySQL primary key cannot hold", ErrLimit, l.table, c.name)
			}
			key += n
		}
		if c.typ == siddhiql.TypeString {
			n += 2 // length bytes
		}
		row += n
	}
	row += (len(l.cols) + 7) / 8 // null flags
	switch {
	case key > mysqlMaxKeyBytes:
		return fmt.Errorf("%w: %s: the primary key (AGG_TIMESTAMP, SHARD_ID, event time, group-by columns) takes up to %d bytes, more than the %d MySQL allows: "+
			"lower the string columns' field.length (4 bytes a character)", ErrLimit, l.table, key, mysqlMaxKeyBytes)
	case row > mysqlMaxRowBytes:
		return fmt.Errorf("%w: %s: a row takes up to %d bytes, more than the %d MySQL allows: lower the string columns' field.length (4 bytes a character)",
			ErrLimit, l.table, row, mysqlMaxRowBytes)
	}
	return nil
}

// mysqlBytes is the most bytes column c takes in a MySQL row or key (BLOBs: their pointer).
func mysqlBytes(c column) int {
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
			if i < l.nKey {
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
