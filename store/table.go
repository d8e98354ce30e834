package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/tally-db/tally/engine/expr"
	"github.com/tally-db/tally/engine/table"
	"github.com/tally-db/tally/siddhiql"
)

// Tables is the shared store's side of `@store(type='rdbms')` tables: each one is mirrored
// to a SQL table in Siddhi's RDBMS layout (named after the table, one column per
// attribute, the primary key from @primaryKey, one index over the @index attributes), so
// SQL written for WSO2 SI keeps reading it. The store returned by Open implements it.
// Safe for concurrent use.
type Tables interface {
	// CheckTable reports, without touching the database, whether the store can hold the
	// table: names, and (MySQL) the row size. Errors wrap ErrLimit.
	CheckTable(sd *table.StoreDef) error
	// EnsureTable creates the table and the fence table if missing. An existing table
	// whose columns are not the attributes, with another primary key or (MySQL) with
	// string columns narrower than field.length says, is refused with
	// ErrIncompatibleTable and left as it is.
	EnsureTable(ctx context.Context, sd *table.StoreDef) error
	// WriteTable writes c, the table's changes as of log index under shard, in one
	// transaction fenced by index (see FenceTable): when the fence already holds index or
	// a greater one, nothing is written and Written.Applied is false. It returns the rows
	// written (inserted, and deleted ones that were there) and the rows skipped because
	// the SQL table cannot hold them (a null in the primary key, a string longer than its
	// column, a NaN or infinite number); a skipped row of a keyed table is deleted from the SQL table rather than
	// left stale.
	WriteTable(ctx context.Context, sd *table.StoreDef, shard string, index uint64, c *table.Changes) (table.Written, error)
}

// FenceTable holds, per mirrored table, app and shard, the log index of the last write:
// TABLE_NAME, APP_NAME, SHARD_ID, RAFT_INDEX. A write first locks its row and goes ahead
// only with a greater index, then records it, in the same transaction; so the mirrored
// table keeps Siddhi's layout, with no column of Tally's, and a deposed leader flushing late
// changes nothing. The app is part of the key because several apps may define one SQL
// table: each app's copy is written, and fenced, on its own.
const FenceTable = "TALLY_TABLE_FENCE"

// Columns of FenceTable.
const (
	fenceTableName = "TABLE_NAME"
	fenceApp       = "APP_NAME"
	fenceShard     = "SHARD_ID"
	fenceIndex     = "RAFT_INDEX"
)

// tableKeysPerDelete is how many primary keys one DELETE names.
const tableKeysPerDelete = 200

// tableLayout is a mirrored table as the store writes it.
type tableLayout struct {
	sd   *table.StoreDef
	cols []column
	// wideKey: the primary key is too wide for MySQL to declare (tableLayout).
	wideKey bool
}

func newTableLayout(sd *table.StoreDef) (*tableLayout, error) {
	if sd == nil {
		return nil, fmt.Errorf("store: nil table definition")
	}
	if !validName(sd.Table) {
		return nil, fmt.Errorf("%w: table name %q cannot name a SQL table: use at most %d letters, digits and '_'", ErrLimit, sd.Table, maxIdentLen)
	}
	if strings.EqualFold(sd.Table, FenceTable) {
		return nil, fmt.Errorf("%w: table %s: %s is the store's own table", ErrLimit, sd.Table, FenceTable)
	}
	if n := utf8.RuneCountInString(sd.App); sd.App == "" || n > defaultStringLen {
		return nil, fmt.Errorf("%w: table %s: its app's name must be 1 to %d characters to be recorded in %s, got %d", ErrLimit, sd.Table, defaultStringLen, FenceTable, n)
	}
	l := &tableLayout{sd: sd}
	seen := map[string]bool{}
	for _, c := range sd.Columns {
		if !validName(c.Name) {
			return nil, fmt.Errorf("%w: table %s: column name %q is not a plain identifier of at most %d characters", ErrLimit, sd.Table, c.Name, maxIdentLen)
		}
		if seen[strings.ToUpper(c.Name)] {
			return nil, fmt.Errorf("%w: table %s: columns %s appears twice (SQL column names ignore letter case)", ErrLimit, sd.Table, c.Name)
		}
		seen[strings.ToUpper(c.Name)] = true
		l.cols = append(l.cols, column{name: c.Name, typ: c.Type, role: roleLatest, length: c.Length})
	}
	for _, p := range sd.PrimaryKey {
		l.cols[p].role = roleGroup // NOT NULL (narrowColumns' MODIFY keeps it)
	}
	return l, nil
}

func (l *tableLayout) names(pos []int) []string {
	out := make([]string, len(pos))
	for i, p := range pos {
		out[i] = l.cols[p].name
	}
	return out
}

func (l *tableLayout) all() []string {
	out := make([]string, len(l.cols))
	for i, c := range l.cols {
		out[i] = c.name
	}
	return out
}

// tableColType is Siddhi's RDBMS type of a column: on MySQL string VARCHAR(field.length),
// int INTEGER, long BIGINT, double DOUBLE, float FLOAT, bool BOOLEAN, object BLOB; on
// SQLite the affinities.
func tableColType(d dialect, c column) string {
	if _, lite := d.(sqliteDialect); lite {
		return sqliteType(c.typ)
	}
	if c.typ == siddhiql.TypeBool {
		return "BOOLEAN"
	}
	return mysqlType(c)
}

// CheckTable implements Tables.
func (s *sqlStore) CheckTable(sd *table.StoreDef) error {
	_, err := s.tableLayout(sd)
	return err
}

// tableLayout is sd's layout on this store's database. On MySQL a primary key wider than
// InnoDB's 3072 bytes (four VARCHAR(254) columns in utf8mb4) cannot be declared: the table
// then has no PRIMARY KEY but an index <Table>_KEY over prefixes of the key columns (Tally
// keeps the keys unique itself), and an @index that wide indexes prefixes too. Only a row
// wider than MySQL allows is refused, with an error wrapping ErrLimit.
func (s *sqlStore) tableLayout(sd *table.StoreDef) (*tableLayout, error) {
	l, err := newTableLayout(sd)
	if err != nil {
		return nil, err
	}
	if _, lite := s.dia.(sqliteDialect); lite {
		return l, nil
	}
	row := 0
	for _, c := range l.cols {
		row += mysqlBytes(c)
	}
	if row > mysqlMaxRowBytes {
		return nil, fmt.Errorf("%w: table %s: a row takes up to %d bytes, more than the %d MySQL allows (4 bytes a character): lower field.length",
			ErrLimit, sd.Table, row, mysqlMaxRowBytes)
	}
	l.wideKey = l.bytes(sd.PrimaryKey) > mysqlMaxKeyBytes
	return l, nil
}

// bytes is the most bytes the columns at pos take in a MySQL key.
func (l *tableLayout) bytes(pos []int) int {
	n := 0
	for _, p := range pos {
		n += mysqlBytes(l.cols[p])
	}
	return n
}

// keyParts are the index parts of columns pos: names, with a prefix length for string
// columns when all of them would not fit MySQL's 3072-byte key. The prefix is shared out
// evenly among the string columns that need one.
func (l *tableLayout) keyParts(d dialect, pos []int) []string {
	out := make([]string, len(pos))
	for i, p := range pos {
		out[i] = d.quote(l.cols[p].name)
	}
	if _, lite := d.(sqliteDialect); lite || l.bytes(pos) <= mysqlMaxKeyBytes {
		return out
	}
	budget := mysqlMaxKeyBytes
	var strs []int
	for i, p := range pos {
		if l.cols[p].typ == siddhiql.TypeString {
			strs = append(strs, i)
		} else {
			budget -= mysqlBytes(l.cols[p])
		}
	}
	// Columns shorter than an even share keep their length; the rest share what is left.
	for {
		share := max(1, budget/mysqlCharBytes/max(1, len(strs)))
		var long []int
		for _, i := range strs {
			if n := l.cols[pos[i]].length; n <= share {
				budget -= n * mysqlCharBytes
			} else {
				long = append(long, i)
			}
		}
		if len(long) == len(strs) {
			for _, i := range long {
				out[i] += fmt.Sprintf("(%d)", share)
			}
			return out
		}
		strs = long
	}
}

// EnsureTable implements Tables.
func (s *sqlStore) EnsureTable(ctx context.Context, sd *table.StoreDef) error {
	l, err := s.tableLayout(sd)
	if err != nil {
		return err
	}
	if err := s.dia.prepare(ctx, s.db); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := s.ensureFence(ctx); err != nil {
		return err
	}
	cols, pk, err := s.dia.tableInfo(ctx, s.db, sd.Table)
	if err != nil {
		return fmt.Errorf("store: inspect %s: %w", sd.Table, err)
	}
	if len(cols) > 0 {
		if err := l.check(cols, pk); err != nil {
			s.log.Error("incompatible mirrored table", "table", sd.Table, "err", err)
			return err
		}
		// A string column narrower than field.length says would fail every write of a
		// longer value (strict mode) and so every flush after it.
		alter, err := s.dia.narrowColumns(ctx, s.db, &layout{table: sd.Table, cols: l.cols})
		if err != nil {
			return fmt.Errorf("store: inspect %s: %w", sd.Table, err)
		}
		if alter != "" {
			err := fmt.Errorf("%w %s: string columns are narrower than the table's field.length, so longer values could not be written. Widen them with: %s",
				ErrIncompatibleTable, sd.Table, alter)
			s.log.Error("incompatible mirrored table", "table", sd.Table, "err", err)
			return err
		}
		return nil
	}
	for _, stmt := range s.createTable(l) {
		if _, err := s.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("store: create %s: %w", sd.Table, err)
		}
	}
	s.log.Info("created mirrored table", "table", sd.Table)
	return nil
}

// check refuses an existing table whose columns are not the table's attributes (a column
// missing, or one of its own, which inserts might not be able to fill) or whose primary
// key is another.
func (l *tableLayout) check(have, pk []string) error {
	var missing, extra []string
	for _, c := range l.cols {
		if !containsFold(have, c.name) {
			missing = append(missing, c.name)
		}
	}
	all := l.all()
	for _, h := range have {
		if !containsFold(all, h) {
			extra = append(extra, h)
		}
	}
	want := l.names(l.sd.PrimaryKey)
	switch {
	case len(missing) > 0:
		return fmt.Errorf("%w %s: it lacks the columns %s of table %s (it has %s): rename or drop it, or rename the table or set its table.name; nothing was written to it",
			ErrIncompatibleTable, l.sd.Table, strings.Join(missing, ", "), l.sd.Table, strings.Join(have, ", "))
	case len(extra) > 0:
		return fmt.Errorf("%w %s: it has columns %s, which table %s does not: rename or drop it, or rename the table or set its table.name; nothing was written to it",
			ErrIncompatibleTable, l.sd.Table, strings.Join(extra, ", "), l.sd.Table)
	case !slicesEqualFold(pk, want) && !(l.wideKey && len(pk) == 0):
		return fmt.Errorf("%w %s: its primary key is (%s), the table's @primaryKey is (%s): nothing was written to it",
			ErrIncompatibleTable, l.sd.Table, strings.Join(pk, ", "), strings.Join(want, ", "))
	}
	return nil
}

func (s *sqlStore) createTable(l *tableLayout) []string {
	q := s.dia.quote
	var defs []string
	for i, c := range l.cols {
		def := q(c.name) + " " + tableColType(s.dia, c)
		for _, p := range l.sd.PrimaryKey {
			if p == i {
				def += " NOT NULL"
			}
		}
		defs = append(defs, def)
	}
	switch {
	case l.wideKey:
		defs = append(defs, "INDEX "+q(l.sd.Table+"_KEY")+" ("+strings.Join(l.keyParts(s.dia, l.sd.PrimaryKey), ", ")+")")
	case len(l.sd.PrimaryKey) > 0:
		defs = append(defs, "PRIMARY KEY ("+quotedList(s.dia, l.names(l.sd.PrimaryKey))+")")
	}
	index := q(l.sd.Table+"_INDEX") + " ON " + q(l.sd.Table) + " (" + quotedList(s.dia, l.names(l.sd.Indexes)) + ")"
	if m, ok := s.dia.(*mysqlDialect); ok {
		if len(l.sd.Indexes) > 0 {
			defs = append(defs, "INDEX "+q(l.sd.Table+"_INDEX")+" ("+strings.Join(l.keyParts(s.dia, l.sd.Indexes), ", ")+")")
		}
		return []string{fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=%s",
			q(l.sd.Table), strings.Join(defs, ", "), m.coll())}
	}
	stmts := []string{fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s)", q(l.sd.Table), strings.Join(defs, ", "))}
	if len(l.sd.Indexes) > 0 {
		stmts = append(stmts, "CREATE INDEX IF NOT EXISTS "+index)
	}
	return stmts
}

// ensureFence creates FenceTable if missing.
func (s *sqlStore) ensureFence(ctx context.Context) error {
	q := s.dia.quote
	name := column{name: fenceTableName, typ: siddhiql.TypeString, length: maxIdentLen}
	str := column{typ: siddhiql.TypeString, length: defaultStringLen}
	stmt := "CREATE TABLE IF NOT EXISTS " + q(FenceTable) + " (" +
		q(fenceTableName) + " " + s.dia.colType(name) + " NOT NULL, " +
		q(fenceApp) + " " + s.dia.colType(str) + " NOT NULL, " +
		q(fenceShard) + " " + s.dia.colType(str) + " NOT NULL, " +
		q(fenceIndex) + " BIGINT NOT NULL, PRIMARY KEY (" + quotedList(s.dia, []string{fenceTableName, fenceApp, fenceShard}) + "))"
	if m, ok := s.dia.(*mysqlDialect); ok {
		stmt += " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=" + m.coll()
	}
	if _, err := s.db.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("store: create %s: %w", FenceTable, err)
	}
	return nil
}

// WriteTable implements Tables.
func (s *sqlStore) WriteTable(ctx context.Context, sd *table.StoreDef, shard string, index uint64, c *table.Changes) (table.Written, error) {
	l, err := s.tableLayout(sd)
	if err != nil {
		return table.Written{}, err
	}
	if n := utf8.RuneCountInString(shard); shard == "" || n > defaultStringLen {
		return table.Written{}, fmt.Errorf("%w: write %s: shard ID must be 1 to %d characters, got %d", ErrLimit, sd.Table, defaultStringLen, n)
	}
	// The fence row is made, once, outside the write's transaction, which then only locks
	// an existing row: writers racing to create it inside their transactions would
	// deadlock on InnoDB's gap locks.
	_, _, create := s.fenceSQL()
	if _, err := s.db.ExecContext(ctx, create, sd.Table, sd.App, shard); err != nil {
		return table.Written{}, fmt.Errorf("store: write %s: fence: %w", sd.Table, err)
	}
	for attempt := 1; ; attempt++ {
		w, err := s.writeTableTx(ctx, l, shard, index, c)
		if err == nil || attempt == 3 || !s.dia.retryable(err) || ctx.Err() != nil {
			if err != nil {
				return table.Written{}, fmt.Errorf("store: write %s: %w", sd.Table, err)
			}
			return w, nil
		}
		s.log.Warn("table write retried", "table", sd.Table, "attempt", attempt, "err", err)
	}
}

func (s *sqlStore) writeTableTx(ctx context.Context, l *tableLayout, shard string, index uint64, c *table.Changes) (table.Written, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return table.Written{}, err
	}
	w, err := s.writeTable(ctx, tx, l, shard, index, c)
	if err != nil || !w.Applied {
		return w, errors.Join(err, rollback(tx))
	}
	if err := tx.Commit(); err != nil {
		return table.Written{}, err
	}
	return w, nil
}

// fenceSQL is the fence table's quoted name, the WHERE clause naming one row (table, app,
// shard) and the statement creating that row at index 0 unless it exists.
func (s *sqlStore) fenceSQL() (fence, where, create string) {
	q := s.dia.quote
	fence = q(FenceTable)
	where = " WHERE " + q(fenceTableName) + " = ? AND " + q(fenceApp) + " = ? AND " + q(fenceShard) + " = ?"
	create = "INSERT INTO " + fence + " (" + quotedList(s.dia, []string{fenceTableName, fenceApp, fenceShard, fenceIndex}) + ") VALUES (?, ?, ?, 0)"
	if _, ok := s.dia.(*mysqlDialect); ok {
		create = strings.Replace(create, "INSERT", "INSERT IGNORE", 1)
	} else {
		create += " ON CONFLICT DO NOTHING"
	}
	return fence, where, create
}

// writeTable is WriteTable's transaction: lock the fence row, deletes, inserts, record the
// index.
func (s *sqlStore) writeTable(ctx context.Context, tx *sql.Tx, l *tableLayout, shard string, index uint64, c *table.Changes) (table.Written, error) {
	q := s.dia.quote
	fence, where, _ := s.fenceSQL()
	lock := "SELECT " + q(fenceIndex) + " FROM " + fence + where
	if _, ok := s.dia.(*mysqlDialect); ok {
		lock += " FOR UPDATE"
	}
	var stored int64
	if err := tx.QueryRowContext(ctx, lock, l.sd.Table, l.sd.App, shard).Scan(&stored); err != nil {
		return table.Written{}, fmt.Errorf("fence: %w", err)
	}
	fenceAt := uint64(max(stored, 0))
	if fenceAt >= index {
		return table.Written{Fence: fenceAt}, nil // a write at this index or a later one is there already
	}
	w := table.Written{Applied: true, Fence: fenceAt}
	deleted, err := s.deleteRows(ctx, tx, l, c)
	if err != nil {
		return table.Written{}, err
	}
	w.Rows += deleted
	var rows []expr.Row
	for _, r := range c.Rows {
		if l.fits(r) {
			rows = append(rows, r)
		} else {
			w.Skipped++
		}
	}
	inserted, err := s.insertRows(ctx, tx, l, rows)
	if err != nil {
		return table.Written{}, err
	}
	w.Rows += inserted
	if _, err := tx.ExecContext(ctx, "UPDATE "+fence+" SET "+q(fenceIndex)+" = ?"+where, int64(index), l.sd.Table, l.sd.App, shard); err != nil {
		return table.Written{}, fmt.Errorf("fence: %w", err)
	}
	return w, nil
}

// fits reports whether the SQL table can hold r: no null in the primary key, no string
// longer than its column, no NaN or infinity (MySQL refuses them).
func (l *tableLayout) fits(r expr.Row) bool {
	for _, p := range l.sd.PrimaryKey {
		if r[p].IsNull() {
			return false
		}
	}
	for i, c := range l.cols {
		v := r[i]
		switch {
		case c.typ == siddhiql.TypeString && v.T == siddhiql.TypeString && utf8.RuneCountInString(v.S) > c.length:
			return false
		case (v.T == siddhiql.TypeDouble || v.T == siddhiql.TypeFloat) && (math.IsNaN(v.F) || math.IsInf(v.F, 0)):
			return false
		}
	}
	return true
}

// deleteRows deletes every row of the table when c replaces it, else the rows with c's
// deleted keys and those with the keys of c's rows (inserted again as they are now). It
// returns how many rows it deleted, not counting those about to be inserted again.
func (s *sqlStore) deleteRows(ctx context.Context, tx *sql.Tx, l *tableLayout, c *table.Changes) (int, error) {
	if c.Replace {
		res, err := tx.ExecContext(ctx, "DELETE FROM "+s.dia.quote(l.sd.Table))
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		return int(n), err
	}
	pk := l.sd.PrimaryKey
	if len(pk) == 0 {
		return 0, nil
	}
	n, err := s.deleteKeys(ctx, tx, l, c.Deleted)
	if err != nil {
		return 0, err
	}
	keys := make([]expr.Row, 0, len(c.Rows))
	for _, r := range c.Rows {
		k := make(expr.Row, len(pk))
		for i, p := range pk {
			k[i] = r[p]
		}
		keys = append(keys, k)
	}
	if _, err := s.deleteKeys(ctx, tx, l, keys); err != nil {
		return 0, err
	}
	return n, nil
}

// deleteKeys deletes the rows with the given primary key values, a batch of keys a
// statement, and returns how many it deleted.
func (s *sqlStore) deleteKeys(ctx context.Context, tx *sql.Tx, l *tableLayout, keys []expr.Row) (int, error) {
	pk := l.sd.PrimaryKey
	cond := "(" + strings.Join(quoteEach(s.dia, l.names(pk), " = ?"), " AND ") + ")"
	n := 0
	for start := 0; start < len(keys); start += tableKeysPerDelete {
		var conds []string
		var args []any
		for _, k := range keys[start:min(start+tableKeysPerDelete, len(keys))] {
			if hasNull(k) {
				continue // never in the SQL table: its key columns are NOT NULL
			}
			conds = append(conds, cond)
			for i, p := range pk {
				v, err := bindValue(l.cols[p], k[i])
				if err != nil {
					return n, err
				}
				args = append(args, v)
			}
		}
		if len(conds) == 0 {
			continue
		}
		where := strings.Join(conds, " OR ")
		if len(pk) == 1 { // k IN (…): one range scan where OR'ed equalities may not be
			where = s.dia.quote(l.cols[pk[0]].name) + " IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(conds)), ", ") + ")"
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM "+s.dia.quote(l.sd.Table)+" WHERE "+where, args...)
		if err != nil {
			return n, err
		}
		d, err := res.RowsAffected()
		if err != nil {
			return n, err
		}
		n += int(d)
	}
	return n, nil
}

func hasNull(r expr.Row) bool {
	for _, v := range r {
		if v.IsNull() {
			return true
		}
	}
	return false
}

func quoteEach(d dialect, names []string, suffix string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = d.quote(n) + suffix
	}
	return out
}

// insertRows inserts rows in batches within the dialect's bind parameter limit. The keys
// were deleted first, so a row whose key is still taken can only be one an existing
// table's collation equates with another (Siddhi's tables often compare strings ignoring
// case): it replaces that row rather than failing every flush from then on.
func (s *sqlStore) insertRows(ctx context.Context, tx *sql.Tx, l *tableLayout, rows []expr.Row) (int, error) {
	per := min(batchRows, s.dia.maxParams()/len(l.cols))
	stmt := "INSERT INTO " + s.dia.quote(l.sd.Table) + " (" + quotedList(s.dia, l.all()) + ") VALUES "
	var onDup string
	if _, ok := s.dia.(*mysqlDialect); ok {
		sets := make([]string, len(l.cols))
		for i, c := range l.cols {
			q := s.dia.quote(c.name)
			sets[i] = q + " = VALUES(" + q + ")"
		}
		onDup = " ON DUPLICATE KEY UPDATE " + strings.Join(sets, ", ")
	} else {
		stmt = strings.Replace(stmt, "INSERT INTO", "INSERT OR REPLACE INTO", 1)
	}
	n := 0
	for start := 0; start < len(rows); start += per {
		batch := rows[start:min(start+per, len(rows))]
		args := make([]any, 0, len(batch)*len(l.cols))
		for i, r := range batch {
			if len(r) != len(l.cols) {
				return n, fmt.Errorf("row %d has %d values, the table %d columns", start+i, len(r), len(l.cols))
			}
			for j, c := range l.cols {
				v, err := bindValue(c, r[j])
				if err != nil {
					return n, fmt.Errorf("row %d: %w", start+i, err)
				}
				args = append(args, v)
			}
		}
		if _, err := tx.ExecContext(ctx, stmt+valuesList(len(batch), len(l.cols))+onDup, args...); err != nil {
			return n, err
		}
		n += len(batch)
	}
	return n, nil
}
