package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/tally-db/tally/siddhiql"
)

// dialect is what differs between MySQL/MariaDB and SQLite. Everything else in the store
// is plain database/sql.
type dialect interface {
	// prepare readies the dialect on first contact with the server; it is called before
	// any table is touched and must be cheap once it has succeeded.
	prepare(ctx context.Context, db *sql.DB) error
	quote(ident string) string
	// colType is the declared type of a column.
	colType(c column) string
	// fit refuses, with an error wrapping ErrLimit, a layout the database cannot create
	// (beyond names, which newLayout checks), or makes it fit (MySQL: hashKey when the
	// group-by columns are too wide for a primary key). It decides from l alone, so the
	// same definition always gives the same layout.
	fit(l *layout) error
	// narrowColumns returns the SQL widening the string columns of l's existing table that
	// hold fewer characters than l says (a field.length raised after the table was made);
	// "" when none do.
	narrowColumns(ctx context.Context, db *sql.DB, l *layout) (string, error)
	// create are the statements creating l's table and its index, idempotently.
	create(l *layout) []string
	// tableInfo returns the table's columns and primary key columns (in key order); no
	// columns means no table.
	tableInfo(ctx context.Context, db *sql.DB, table string) (cols, pk []string, err error)
	// migration is the SQL that turns an existing table with columns have and primary key
	// pk into l's layout.
	migration(l *layout, have, pk []string) string
	// maxParams is the most bind parameters one statement may carry.
	maxParams() int
	// upsert runs the fenced upsert of nRows rows (args in l.cols order, row after row)
	// in tx and returns how many rows it inserted or replaced.
	upsert(ctx context.Context, tx *sql.Tx, l *layout, nRows int, args []any) (int64, error)
	// retryable reports whether a failed transaction may simply run again.
	retryable(err error) bool
	// missingTable reports whether err says the table does not exist.
	missingTable(err error) bool
}

// quotedList quotes and joins names.
func quotedList(d dialect, names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = d.quote(n)
	}
	return strings.Join(q, ", ")
}

// columnDefs are the column definitions of a CREATE TABLE: key columns and TALLY_INDEX
// NOT NULL, the others nullable, as in Siddhi.
func columnDefs(d dialect, l *layout) []string {
	defs := make([]string, 0, len(l.cols)+2)
	for i, c := range l.cols {
		def := d.quote(c.name) + " " + d.colType(c)
		switch {
		case c.role == roleIndex:
			def += " NOT NULL DEFAULT 0"
		case i < l.nKey, c.role == roleGroup:
			def += " NOT NULL"
		}
		defs = append(defs, def)
	}
	return append(defs, "PRIMARY KEY ("+quotedList(d, l.names()[:l.nKey])+")")
}

// valuesList is "(?, ?, ...), (...)" for nRows rows of nCols columns.
func valuesList(nRows, nCols int) string {
	row := "(" + strings.Repeat("?, ", nCols-1) + "?)"
	var b strings.Builder
	b.Grow(nRows * (len(row) + 2))
	for i := range nRows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

// migrationSelect is the select list copying an old table's rows into l's layout: the
// columns it has, a placeholder shard for a missing SHARD_ID, 0 for a missing TALLY_INDEX
// and NULL for other missing columns.
func migrationSelect(d dialect, l *layout, have []string) string {
	exprs := make([]string, len(l.cols))
	for i, c := range l.cols {
		switch {
		case containsFold(have, c.name):
			exprs[i] = d.quote(c.name)
		case c.role == roleShard:
			exprs[i] = "'" + legacyShard + "'"
		case c.role == roleIndex:
			exprs[i] = "0"
		default:
			exprs[i] = "NULL"
		}
	}
	return strings.Join(exprs, ", ")
}

// legacyShard is the SHARD_ID a migration gives rows written before partitioning.
const legacyShard = "pre-partitioning"

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// typeName is the SQLite declared type of a SiddhiQL type: its affinity.
func sqliteType(t siddhiql.Type) string {
	switch t {
	case siddhiql.TypeString:
		return "TEXT"
	case siddhiql.TypeFloat, siddhiql.TypeDouble:
		return "REAL"
	case siddhiql.TypeObject:
		return "BLOB"
	default: // int, long, bool
		return "INTEGER"
	}
}

// mysqlType is Siddhi's RDBMS type mapping for MySQL; a string column is VARCHAR of its
// length (field.length, else 254).
func mysqlType(c column) string {
	switch c.typ {
	case siddhiql.TypeString:
		return fmt.Sprintf("VARCHAR(%d)", strLen(c.length))
	case siddhiql.TypeObject:
		if c.role == roleKey {
			return fmt.Sprintf("BINARY(%d)", keyHashBytes)
		}
		return "BLOB"
	case siddhiql.TypeInt:
		return "INTEGER"
	case siddhiql.TypeFloat:
		return "FLOAT"
	case siddhiql.TypeDouble:
		return "DOUBLE"
	case siddhiql.TypeBool:
		return "TINYINT(1)"
	default: // long
		return "BIGINT"
	}
}
