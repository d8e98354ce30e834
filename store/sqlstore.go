package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/siddhiql"
)

// batchRows is the most rows one upsert statement carries (fewer for very wide tables, to
// stay under the dialect's bind parameter limit).
const batchRows = 500

// sqlStore is Rollups over database/sql; dia holds what differs between databases.
type sqlStore struct {
	db  *sql.DB
	dia dialect
	log *slog.Logger
}

// Ensure implements Rollups.
func (s *sqlStore) Ensure(ctx context.Context, def *agg.Def) error {
	if def == nil {
		return fmt.Errorf("store: ensure: nil aggregation definition")
	}
	if err := s.CheckDef(def); err != nil {
		return err
	}
	if err := s.dia.prepare(ctx, s.db); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	var missing []*layout
	for _, d := range def.Durations {
		l, err := s.layout(def, d)
		if err != nil {
			return err
		}
		cols, pk, err := s.dia.tableInfo(ctx, s.db, l.table)
		if err != nil {
			return fmt.Errorf("store: inspect %s: %w", l.table, err)
		}
		if len(cols) == 0 {
			missing = append(missing, l)
			continue
		}
		if err := s.check(l, cols, pk); err != nil {
			s.log.Error("incompatible rollup table", "table", l.table, "err", err)
			return err
		}
		alter, err := s.dia.narrowColumns(ctx, s.db, l)
		if err != nil {
			return fmt.Errorf("store: inspect %s: %w", l.table, err)
		}
		if alter != "" {
			err := fmt.Errorf("%w %s: string columns are narrower than the aggregation's field.length, so longer values could not be written. Widen them with: %s",
				ErrIncompatibleTable, l.table, alter)
			s.log.Error("incompatible rollup table", "table", l.table, "err", err)
			return err
		}
	}
	for _, l := range missing {
		for _, stmt := range s.dia.create(l) {
			if _, err := s.db.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("store: create %s: %w", l.table, err)
			}
		}
		s.log.Info("created rollup table", "table", l.table)
	}
	return nil
}

// check refuses an existing table Tally cannot write, saying how to migrate it.
func (s *sqlStore) check(l *layout, have, pk []string) error {
	var missing []string
	for _, c := range l.cols {
		if !containsFold(have, c.name) {
			missing = append(missing, c.name)
		}
	}
	wantPK := l.names()[:l.nKey]
	pkOK := slicesEqualFold(pk, wantPK)
	if pkOK && len(missing) == 0 {
		return nil
	}
	var why string
	switch {
	case l.hashed && !containsFold(have, colKey):
		// TALLY_KEY is computed by Tally, not SQL: the table cannot be migrated in place.
		return fmt.Errorf("%w %s: the group-by columns are too wide for a MySQL primary key, so Tally's table keys rows by %s "+
			"(a hash of the group-by values), which this table lacks: drop or rename it and let Tally create it, "+
			"or lower the string columns' field.length (4 bytes a character) so that the key fits without %s",
			ErrIncompatibleTable, l.table, colKey, colKey)
	case !containsFold(pk, colShardID):
		why = fmt.Sprintf("its primary key (%s) lacks SHARD_ID, so it is a Siddhi table from before partitioning; "+
			"the migration gives existing rows SHARD_ID '%s'", strings.Join(pk, ", "), legacyShard)
	case !pkOK:
		why = fmt.Sprintf("its primary key is (%s), Tally's is (%s)", strings.Join(pk, ", "), strings.Join(wantPK, ", "))
	case len(missing) == 1 && missing[0] == colIndex:
		why = "it lacks TALLY_INDEX, the Raft index of each row's last change that fences writes"
	default:
		why = "it lacks columns " + strings.Join(missing, ", ")
	}
	return fmt.Errorf("%w %s: %s. Migrate it with: %s", ErrIncompatibleTable, l.table, why, s.dia.migration(l, have, pk))
}

func slicesEqualFold(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.EqualFold(a[i], b[i]) {
			return false
		}
	}
	return true
}

// Upsert implements Rollups.
func (s *sqlStore) Upsert(ctx context.Context, def *agg.Def, d siddhiql.Duration, shard string, rows []*agg.Row) (int, error) {
	l, err := s.layout(def, d)
	if err != nil {
		return 0, err
	}
	if n := utf8.RuneCountInString(shard); shard == "" || n > l.cols[1].length {
		return 0, fmt.Errorf("%w: upsert %s: shard ID must be 1 to %d characters (SHARD_ID's field.length), got %d", ErrLimit, l.table, l.cols[1].length, n)
	}
	per := min(batchRows, s.dia.maxParams()/len(l.cols))
	total := 0
	for start := 0; start < len(rows); start += per {
		batch := rows[start:min(start+per, len(rows))]
		args := make([]any, 0, len(batch)*len(l.cols))
		for i, r := range batch {
			if args, err = l.appendArgs(args, shard, r); err != nil {
				return total, fmt.Errorf("store: upsert %s: row %d: %w", l.table, start+i, err)
			}
		}
		n, err := s.upsertBatch(ctx, l, len(batch), args)
		if err != nil {
			return total, fmt.Errorf("store: upsert %s: %w", l.table, err)
		}
		total += int(n)
	}
	return total, nil
}

// upsertBatch runs one batch in its own transaction, retrying a few times when the
// database chose it as a deadlock victim (concurrent upserts into neighbouring keys).
func (s *sqlStore) upsertBatch(ctx context.Context, l *layout, nRows int, args []any) (int64, error) {
	for attempt := 1; ; attempt++ {
		n, err := s.upsertTx(ctx, l, nRows, args)
		if err == nil || attempt == 3 || !s.dia.retryable(err) || ctx.Err() != nil {
			return n, err
		}
		s.log.Warn("upsert retried", "table", l.table, "attempt", attempt, "err", err)
	}
}

func (s *sqlStore) upsertTx(ctx context.Context, l *layout, nRows int, args []any) (int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	n, err := s.dia.upsert(ctx, tx, l, nRows, args)
	if err != nil {
		return 0, errors.Join(err, rollback(tx))
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return n, nil
}

// rollback rolls tx back; a transaction the error already ended is no second error.
func rollback(tx *sql.Tx) error {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fmt.Errorf("rollback: %w", err)
	}
	return nil
}

// Read implements Rollups.
func (s *sqlStore) Read(ctx context.Context, def *agg.Def, d siddhiql.Duration, start, end int64) ([]ShardRow, error) {
	l, err := s.layout(def, d)
	if err != nil {
		return nil, err
	}
	q := s.dia.quote
	query := "SELECT " + quotedList(s.dia, l.names()) + " FROM " + q(l.table) +
		" WHERE " + q(l.bucket) + " >= ? AND " + q(l.bucket) + " < ? ORDER BY " + quotedList(s.dia, l.sortKey())
	rows, err := s.db.QueryContext(ctx, query, start, end)
	if s.dia.missingTable(err) {
		return nil, nil // nothing flushed yet: the first flush creates the tables
	}
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", l.table, err)
	}
	defer rows.Close()
	sc := newScanner(l)
	var out []ShardRow
	for rows.Next() {
		if err := rows.Scan(sc.dests...); err != nil {
			return nil, fmt.Errorf("store: read %s: %w", l.table, err)
		}
		r, err := sc.row()
		if err != nil {
			return nil, fmt.Errorf("store: read %s: %w", l.table, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: read %s: %w", l.table, err)
	}
	return out, nil
}

// Purge implements Rollups.
func (s *sqlStore) Purge(ctx context.Context, def *agg.Def, d siddhiql.Duration, shard string, cutoff int64) (int64, error) {
	l, err := s.layout(def, d)
	if err != nil {
		return 0, err
	}
	q := s.dia.quote
	res, err := s.db.ExecContext(ctx, "DELETE FROM "+q(l.table)+" WHERE "+q(colShardID)+" = ? AND "+q(l.bucket)+" < ?", shard, cutoff)
	if s.dia.missingTable(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: purge %s: %w", l.table, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: purge %s: %w", l.table, err)
	}
	return n, nil
}

// Close implements Rollups.
func (s *sqlStore) Close() error { return s.db.Close() }

// queryStrings runs a query returning one string column.
func queryStrings(ctx context.Context, db *sql.DB, query string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
