package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	_ "modernc.org/sqlite" // registers driver "sqlite"
)

// sqliteMaxOpenConns bounds one process's connections to the file: writes are serialized
// by SQLite anyway, and WAL lets the few readers run beside the writer.
const sqliteMaxOpenConns = 4

// sqliteDefaults are added to a SQLite DSN unless it sets them: wait up to 10 s for
// another connection or process to finish writing instead of failing with "database is
// locked"; WAL so readers do not block the writer; and BEGIN IMMEDIATE so a transaction
// takes the write lock up front, where the busy timeout applies.
var sqliteDefaults = []struct{ key, value, marker string }{
	{"_pragma", "busy_timeout(10000)", "busy_timeout"},
	{"_pragma", "journal_mode(WAL)", "journal_mode"},
	{"_txlock", "immediate", "_txlock"},
}

func openSQLite(ctx context.Context, rest string, logger *slog.Logger) (Rollups, error) {
	path, query, _ := strings.Cut(rest, "?")
	if path == "" {
		return nil, fmt.Errorf("%w: sqlite DSN has no file path: %s", ErrBadDSN, dsnForms)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("%w: sqlite parameters: %w", ErrBadDSN, err)
	}
	for _, d := range sqliteDefaults {
		if !strings.Contains(query, d.marker) {
			q.Add(d.key, d.value)
		}
	}
	if err := privateFile(path, logger); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(sqliteMaxOpenConns)
	db.SetMaxIdleConns(sqliteMaxOpenConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	logger = logger.With("driver", "sqlite", "db", path)
	logger.Info("rollup store open")
	return &sqlStore{db: db, dia: sqliteDialect{}, log: logger}, nil
}

// privateFile creates the SQLite file 0600 when missing (SQLite gives its -wal and -shm
// files the same mode) and takes group and other permissions away from an existing one,
// saying so: the store holds every aggregation's rows. A path that is not a plain file
// (":memory:", a "file:" URI) is left to SQLite.
func privateFile(path string, logger *slog.Logger) error {
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		if err := f.Chmod(perm &^ 0o077); err != nil {
			return fmt.Errorf("store: restrict permissions of %s: %w", path, err)
		}
		logger.Warn("the SQLite store file was readable by group or others: took those permissions away", "path", path, "was", fmt.Sprintf("%#o", perm))
	}
	return nil
}

// sqliteDialect is SQLite 3.24+ (upsert), through modernc.org/sqlite.
type sqliteDialect struct{}

func (sqliteDialect) prepare(context.Context, *sql.DB) error { return nil }

func (sqliteDialect) quote(ident string) string {
	return `"` + strings.ReplaceAll(ident, `"`, `""`) + `"`
}

func (sqliteDialect) colType(c column) string { return sqliteType(c.typ) }

// maxParams is SQLITE_MAX_VARIABLE_NUMBER's default since 3.32.
func (sqliteDialect) maxParams() int { return 32766 }

func (s sqliteDialect) create(l *layout) []string {
	stmts := []string{fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s)", s.quote(l.table), strings.Join(columnDefs(s, l), ", "))}
	if l.def.HasLastEventTimestamp() {
		// Index names are global in SQLite: prefix the table's.
		stmts = append(stmts, fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (%s)",
			s.quote(l.table+"_"+colLastEventTS), s.quote(l.table), s.quote(colLastEventTS)))
	}
	return stmts
}

func (sqliteDialect) tableInfo(ctx context.Context, db *sql.DB, table string) (cols, pk []string, err error) {
	rows, err := db.QueryContext(ctx, "SELECT name, pk FROM pragma_table_info(?) ORDER BY cid", table)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var keyPos []int
	for rows.Next() {
		var name string
		var p int
		if err := rows.Scan(&name, &p); err != nil {
			return nil, nil, err
		}
		cols = append(cols, name)
		keyPos = append(keyPos, p)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	// pk is the column's 1-based position in the primary key, 0 outside it.
	for p := 1; ; p++ {
		n := len(pk)
		for i, kp := range keyPos {
			if kp == p {
				pk = append(pk, cols[i])
			}
		}
		if len(pk) == n {
			return cols, pk, nil
		}
	}
}

// migration: SQLite adds columns in place but cannot change a primary key, so then the
// table is rebuilt.
func (s sqliteDialect) migration(l *layout, have, pk []string) string {
	if slicesEqualFold(pk, l.names()[:l.nKey]) {
		var stmts []string
		for _, c := range l.cols {
			if containsFold(have, c.name) {
				continue
			}
			add := "ALTER TABLE " + s.quote(l.table) + " ADD COLUMN " + s.quote(c.name) + " " + s.colType(c)
			if c.role == roleIndex {
				add += " NOT NULL DEFAULT 0"
			}
			stmts = append(stmts, add)
		}
		return strings.Join(stmts, "; ")
	}
	old := s.quote(l.table + "_siddhi")
	create := s.create(l)
	stmts := []string{"ALTER TABLE " + s.quote(l.table) + " RENAME TO " + old, create[0],
		"INSERT INTO " + s.quote(l.table) + " (" + quotedList(s, l.names()) + ") SELECT " + migrationSelect(s, l, have) + " FROM " + old,
		"DROP TABLE " + old}
	return strings.Join(append(stmts, create[1:]...), "; ")
}

// upsertSQL is the fenced upsert of nRows rows: a conflicting row is replaced only when
// the incoming TALLY_INDEX is greater.
func (s sqliteDialect) upsertSQL(l *layout, nRows int) string {
	var sets []string
	for _, c := range l.cols[l.nKey:] {
		q := s.quote(c.name)
		sets = append(sets, q+" = excluded."+q)
	}
	qi := s.quote(colIndex)
	return "INSERT INTO " + s.quote(l.table) + " (" + quotedList(s, l.names()) + ") VALUES " + valuesList(nRows, len(l.cols)) +
		" ON CONFLICT (" + quotedList(s, l.names()[:l.nKey]) + ") DO UPDATE SET " + strings.Join(sets, ", ") +
		" WHERE excluded." + qi + " > " + s.quote(l.table) + "." + qi
}

func (s sqliteDialect) upsert(ctx context.Context, tx *sql.Tx, l *layout, nRows int, args []any) (int64, error) {
	res, err := tx.ExecContext(ctx, s.upsertSQL(l, nRows), args...)
	if err != nil {
		return 0, err
	}
	// Rows the WHERE left alone do not count.
	return res.RowsAffected()
}

// retryable: SQLite has waited out the busy timeout already.
func (sqliteDialect) retryable(error) bool { return false }

// missingTable: SQLite reports it only in the message.
func (sqliteDialect) missingTable(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such table")
}
