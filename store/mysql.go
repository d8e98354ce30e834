package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQL connection defaults, used when the DSN does not set them.
const (
	mysqlConnectTimeout = 5 * time.Second
	mysqlIOTimeout      = 30 * time.Second
	mysqlMaxOpenConns   = 8
)

// mysqlCollations are the binary collations tables may use, best first. A binary collation
// keeps group-by values that differ only in case or accents apart, as the engine does;
// NO PAD also keeps trailing spaces significant.
var mysqlCollations = []string{"utf8mb4_nopad_bin", "utf8mb4_0900_bin", "utf8mb4_bin"}

func openMySQL(ctx context.Context, dsn string, logger *slog.Logger) (Rollups, error) {
	secret := mysqlPassword(dsn)
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, redact(fmt.Errorf("%w: mysql: %w", ErrBadDSN, err), secret)
	}
	secret = cfg.Passwd
	if cfg.Timeout == 0 {
		cfg.Timeout = mysqlConnectTimeout
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = mysqlIOTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = mysqlIOTimeout
	}
	// Upsert's count relies on MySQL's default affected-rows semantics.
	cfg.ClientFoundRows = false
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	if _, ok := cfg.Params["sql_mode"]; !ok {
		// Strict: a value that does not fit (a set too large for its BLOB) is an error,
		// not a silent truncation.
		cfg.Params["sql_mode"] = "CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')"
	}
	cfg.Logger = mysqlLogger{logger}
	where := fmt.Sprintf("%s@%s(%s)/%s", cfg.User, cfg.Net, cfg.Addr, cfg.DBName)
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, redact(fmt.Errorf("%w: mysql %s: %w", ErrBadDSN, where, err), secret)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(mysqlMaxOpenConns)
	db.SetMaxIdleConns(mysqlMaxOpenConns)
	db.SetConnMaxLifetime(5 * time.Minute)
	db.SetConnMaxIdleTime(time.Minute)
	d := &mysqlDialect{}
	logger = logger.With("driver", "mysql", "db", where)
	// The first contact is bounded by the connect timeout: a server that accepts the
	// connection but never answers (a network partition) must not hold the node's start.
	pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	err = d.prepare(pctx, db)
	cancel()
	if err != nil {
		if !reachableLater(ctx, err) {
			db.Close()
			return nil, redact(fmt.Errorf("store: open mysql %s: %w", where, err), secret)
		}
		// A node must be able to start while the database is away (a restart during an
		// outage): its rows wait in memory, and the flush retries until the store is back.
		logger.Warn("rollup store not reachable yet; starting anyway, the flush retries until it is",
			"err", redact(err, secret))
		return &sqlStore{db: db, dia: d, log: logger}, nil
	}
	logger.Info("rollup store open", "collation", d.coll())
	return &sqlStore{db: db, dia: d, log: logger}, nil
}

// reachableLater reports whether an error opening the store may go away by itself (the
// server is down or unreachable) rather than needing an operator (wrong password, no such
// database, no usable collation) or coming from the caller giving up.
func reachableLater(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1044, 1045, 1049, 1698: // access denied to the database, for the user; unknown database
			return false
		}
		return true
	}
	return !errors.Is(err, errNoCollation)
}

// errNoCollation: the server offers none of mysqlCollations.
var errNoCollation = errors.New("server has no utf8mb4 binary collation")

// mysqlPassword finds the password in a DSN the way mysql.ParseDSN does, so that it can be
// hidden even in ParseDSN's own errors.
func mysqlPassword(dsn string) string {
	slash := strings.LastIndexByte(dsn, '/')
	if slash < 0 {
		slash = len(dsn)
	}
	at := strings.LastIndexByte(dsn[:slash], '@')
	if at < 0 {
		return ""
	}
	_, pw, ok := strings.Cut(dsn[:at], ":")
	if !ok {
		return ""
	}
	return pw
}

func pickCollation(ctx context.Context, db *sql.DB) (string, error) {
	rows, err := db.QueryContext(ctx, "SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN (?, ?, ?)",
		mysqlCollations[0], mysqlCollations[1], mysqlCollations[2])
	if err != nil {
		return "", err
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return "", err
		}
		have[c] = true
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	for _, c := range mysqlCollations {
		if have[c] {
			return c, nil
		}
	}
	return "", errNoCollation
}

// mysqlLogger sends the driver's own messages (dropped connections, mostly) to slog.
type mysqlLogger struct{ l *slog.Logger }

func (m mysqlLogger) Print(v ...any) {
	m.l.Warn("mysql driver: " + strings.TrimSpace(fmt.Sprint(v...)))
}

// mysqlDialect is MySQL 5.7+/8 and MariaDB 10.2+.
type mysqlDialect struct {
	mu sync.Mutex
	// collation is the binary collation tables get, picked from the server on first
	// contact (prepare).
	collation string
	// indexFirst assigns TALLY_INDEX first in the upsert: the bug the fencing tests must
	// catch. Tests only.
	indexFirst bool
}

// prepare picks the tables' collation once the server answers; until then every call
// tries again.
func (m *mysqlDialect) prepare(ctx context.Context, db *sql.DB) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.collation != "" {
		return nil
	}
	if err := db.PingContext(ctx); err != nil {
		return err
	}
	c, err := pickCollation(ctx, db)
	if err != nil {
		return err
	}
	m.collation = c
	return nil
}

// coll is the collation prepare picked.
func (m *mysqlDialect) coll() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.collation
}

func (*mysqlDialect) quote(ident string) string {
	return "`" + strings.ReplaceAll(ident, "`", "``") + "`"
}

func (*mysqlDialect) colType(c column) string { return mysqlType(c) }

func (*mysqlDialect) maxParams() int { return 65535 }

func (m *mysqlDialect) create(l *layout) []string {
	defs := columnDefs(m, l)
	if l.def.HasLastEventTimestamp() {
		defs = append(defs, "INDEX "+m.quote(colLastEventTS)+" ("+m.quote(colLastEventTS)+")")
	}
	return []string{fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=%s",
		m.quote(l.table), strings.Join(defs, ", "), m.coll())}
}

func (*mysqlDialect) tableInfo(ctx context.Context, db *sql.DB, table string) (cols, pk []string, err error) {
	if cols, err = queryStrings(ctx, db, "SELECT COLUMN_NAME FROM information_schema.COLUMNS "+
		"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", table); err != nil || len(cols) == 0 {
		return nil, nil, err
	}
	pk, err = queryStrings(ctx, db, "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "+
		"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION", table)
	return cols, pk, err
}

func (m *mysqlDialect) migration(l *layout, have, pk []string) string {
	var parts []string
	prev := ""
	for _, c := range l.cols {
		if containsFold(have, c.name) {
			prev = c.name
			continue
		}
		add := "ADD COLUMN " + m.quote(c.name) + " " + m.colType(c)
		switch c.role {
		case roleShard:
			add += " NOT NULL DEFAULT '" + legacyShard + "'"
		case roleIndex:
			add += " NOT NULL DEFAULT 0"
		}
		if prev != "" && c.role != roleIndex {
			add += " AFTER " + m.quote(prev)
		}
		parts = append(parts, add)
		prev = c.name
	}
	if !slicesEqualFold(pk, l.names()[:l.nKey]) {
		if len(pk) > 0 {
			parts = append(parts, "DROP PRIMARY KEY")
		}
		parts = append(parts, "ADD PRIMARY KEY ("+quotedList(m, l.names()[:l.nKey])+")")
	}
	// Siddhi's tables take the server's default collation, often case-insensitive, under
	// which group-by values differing only in case would overwrite each other.
	parts = append(parts, "CONVERT TO CHARACTER SET utf8mb4 COLLATE "+m.coll())
	return "ALTER TABLE " + m.quote(l.table) + " " + strings.Join(parts, ", ")
}

// upsertSQL is the fenced upsert of nRows rows. MySQL evaluates the assignments of ON
// DUPLICATE KEY UPDATE left to right, each seeing the columns already assigned, so
// TALLY_INDEX must come last: every IF before it compares the incoming index with the
// stored one. The TALLY_INDEX assignment also counts the rows it replaces in
// @tally_replaced, because MySQL's affected-rows count (1 per insert, 2 per replaced row,
// 0 per row left alone) cannot tell one replaced row from two inserted ones.
func (m *mysqlDialect) upsertSQL(l *layout, nRows int) string {
	qi := m.quote(colIndex)
	fresh := "VALUES(" + qi + ") > " + qi
	var sets []string
	indexSet := qi + " = IF(" + fresh + ", VALUES(" + qi + ") + 0 * (@tally_replaced := @tally_replaced + 1), " + qi + ")"
	if m.indexFirst {
		sets = append(sets, indexSet)
	}
	for _, c := range l.cols[l.nKey:] {
		if c.role == roleIndex || c.role == roleGroup { // group-by columns: only when hashed, fixed by TALLY_KEY
			continue
		}
		q := m.quote(c.name)
		sets = append(sets, q+" = IF("+fresh+", VALUES("+q+"), "+q+")")
	}
	if !m.indexFirst {
		sets = append(sets, indexSet)
	}
	return "INSERT INTO " + m.quote(l.table) + " (" + quotedList(m, l.names()) + ") VALUES " +
		valuesList(nRows, len(l.cols)) + " ON DUPLICATE KEY UPDATE " + strings.Join(sets, ", ")
}

func (m *mysqlDialect) upsert(ctx context.Context, tx *sql.Tx, l *layout, nRows int, args []any) (int64, error) {
	if _, err := tx.ExecContext(ctx, "SET @tally_replaced = 0"); err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, m.upsertSQL(l, nRows), args...)
	if err != nil {
		return 0, err
	}
	affected, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	var replaced int64
	if err := tx.QueryRowContext(ctx, "SELECT @tally_replaced").Scan(&replaced); err != nil {
		return 0, err
	}
	return affected - replaced, nil
}

// retryable: ER_LOCK_DEADLOCK (1213) and ER_LOCK_WAIT_TIMEOUT (1205) roll the transaction
// back (or leave it to be rolled back), so it may run again.
func (*mysqlDialect) retryable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}

// missingTable: ER_NO_SUCH_TABLE (1146).
func (*mysqlDialect) missingTable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1146
}
