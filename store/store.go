package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/siddhiql"
)

// Errors callers check with errors.Is.
var (
	// ErrIncompatibleTable is returned by Ensure for an existing table whose layout Tally
	// cannot write: a primary key without SHARD_ID (a Siddhi table from before
	// partitioning), a missing TALLY_INDEX or other missing columns. The message says how
	// to migrate.
	ErrIncompatibleTable = errors.New("store: incompatible table")
	// ErrBadDSN is returned by Open for an empty or malformed DSN or an unknown scheme.
	ErrBadDSN = errors.New("store: bad DSN")
)

// Rollups is the shared rollup store: every partition group's leader writes its
// aggregation rows under its shard ID, and queries read every shard's rows. Safe for
// concurrent use, also by several processes sharing one database.
type Rollups interface {
	// CheckDef reports, without touching the database, whether the store can hold the
	// aggregation's tables: names and (MySQL) key and row sizes. Errors wrap ErrLimit.
	CheckDef(def *agg.Def) error
	// Ensure creates the aggregation's tables (<Agg>_SECONDS … <Agg>_YEARS, only its own
	// durations) if missing, and checks existing ones. A table whose primary key lacks
	// SHARD_ID, or which lacks TALLY_INDEX or another column, is refused with
	// ErrIncompatibleTable and a message giving the SQL to migrate it; when any table is
	// refused, Ensure creates nothing.
	Ensure(ctx context.Context, def *agg.Def) error
	// Upsert writes rows of granularity d under shard as absolute values, in batches of at
	// most 500 rows, each batch in one transaction. Each row is fenced: an existing row is
	// replaced only when the incoming Index is greater than its stored TALLY_INDEX, so a
	// stale writer can never make a row go back. It returns how many rows were inserted or
	// replaced (rows refused by the fence do not count). On error, earlier batches stay
	// written: upserts are idempotent, so the caller retries them all.
	Upsert(ctx context.Context, def *agg.Def, d siddhiql.Duration, shard string, rows []*agg.Row) (int, error)
	// Read returns the rows of table d of every shard whose bucket time
	// (AGG_EVENT_TIMESTAMP in event-time mode, else AGG_TIMESTAMP) is in [start, end),
	// ordered by primary key, with their shard IDs.
	Read(ctx context.Context, def *agg.Def, d siddhiql.Duration, start, end int64) ([]ShardRow, error)
	// Purge deletes shard's rows of table d whose bucket time is before cutoff and returns
	// how many it deleted. Other shards' rows are never touched.
	Purge(ctx context.Context, def *agg.Def, d siddhiql.Duration, shard string, cutoff int64) (int64, error)
	// Close closes the database connections.
	Close() error
}

// ShardRow is a row read from the store with the shard that wrote it. It is agg.ShardRow,
// so that consumers declaring their own store interface in terms of the engine's types
// (raftnode.Store) take Rollups as it is.
type ShardRow = agg.ShardRow

// dsnForms is what an error about a bad DSN suggests.
const dsnForms = `use "mysql://user:pass@tcp(host:port)/db?params" or "sqlite:///abs/path/file.db" or "sqlite://relative/path.db"`

// Open opens a store from a DSN: "mysql://user:pass@tcp(host:port)/db?params" (a
// go-sql-driver/mysql DSN after the scheme; MariaDB too) or "sqlite:///abs/path/file.db" /
// "sqlite://relative/path.db" (an embedded SQLite file that several processes on one
// machine may share). Open checks that the database answers (within ctx and the DSN's
// connect timeout, 5 s by default). A nil logger means slog.Default(). Passwords never
// appear in errors or logs. Errors wrap ErrBadDSN for a DSN that cannot be used.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (Rollups, error) {
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "store")
	if dsn == "" {
		return nil, fmt.Errorf("%w: empty DSN: %s", ErrBadDSN, dsnForms)
	}
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return nil, fmt.Errorf("%w: no scheme: %s", ErrBadDSN, dsnForms)
	}
	switch strings.ToLower(scheme) {
	case "mysql":
		return openMySQL(ctx, rest, logger)
	case "sqlite":
		return openSQLite(ctx, rest, logger)
	}
	if len(scheme) > 20 || strings.ContainsAny(scheme, ":@/") {
		scheme = "?" // not a scheme name, and it may hold a password: do not echo it
	}
	return nil, fmt.Errorf("%w: unknown scheme %q: %s", ErrBadDSN, scheme, dsnForms)
}

// redacted is an error whose text has a secret replaced; it still unwraps to the original.
type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }

// redact hides secret in err's text.
func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &redacted{msg: strings.ReplaceAll(err.Error(), secret, "xxxxx"), err: err}
}
