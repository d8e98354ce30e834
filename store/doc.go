// Package store is the shared rollup store: the SQL tables where each partition group's
// leader writes its incremental-aggregation rows, and from which queries read every shard's
// rows. It speaks MySQL/MariaDB (go-sql-driver/mysql) and SQLite (modernc.org/sqlite, a
// file several processes on one machine share); the differences stay in a small dialect.
//
// # Layout
//
// Tables follow Siddhi's RDBMS layout, so dashboards and SQL written for WSO2 SI keep
// working: one table per granularity the aggregation keeps, <Agg>_SECONDS, <Agg>_MINUTES,
// <Agg>_HOURS, <Agg>_DAYS, <Agg>_MONTHS, <Agg>_YEARS, with columns in Siddhi's order:
//
//	AGG_TIMESTAMP            BIGINT        arrival bucket start (ms)
//	SHARD_ID                 VARCHAR(254)  the group that wrote the row
//	AGG_EVENT_TIMESTAMP      BIGINT        event bucket start (event-time mode only)
//	<group-by columns>                     typed as the stream attributes
//	<latest-value columns>                 non-aggregate select expressions
//	AGG_LAST_EVENT_TIMESTAMP BIGINT        event time of the latest values (indexed; only with latest columns)
//	AGG_SUM_x, AGG_COUNT, AGG_MIN_x, AGG_MAX_x, AGG_SET_x   base columns
//	TALLY_INDEX              BIGINT NOT NULL  Raft index of the row's last change
//
// The primary key is (AGG_TIMESTAMP, SHARD_ID, [AGG_EVENT_TIMESTAMP], group-by columns).
// On MySQL, when that key would pass InnoDB's 3072 bytes, a column TALLY_KEY BINARY(32) NOT
// NULL goes before the group-by columns and replaces them in the key: the SHA-256 of the
// group-by values, each converted to its column type and encoded by expr.Value.Key
// (type-tagged, length-prefixed), in group-by order. The group-by columns stay, NOT NULL.
// Whether a table has TALLY_KEY follows from the definition alone.
// MySQL types are Siddhi's: string VARCHAR(254), long BIGINT, double DOUBLE, float FLOAT,
// int INTEGER, bool TINYINT(1), object BLOB; tables use utf8mb4 with a binary collation, so
// group-by values differing only in case stay distinct rows as they are in the engine.
// SQLite uses the affinities INTEGER, REAL, TEXT and BLOB. AGG_SET_x (distinctCount) holds
// the set's members sorted, encoded with internal/wire: a uvarint count, then each member
// as a uvarint length and bytes (each member is the type-tagged key of the value). Latest
// values, AGG_LAST_EVENT_TIMESTAMP and min/max columns may be NULL; key columns never are.
//
// # Fencing
//
// Upsert writes absolute values, never increments, and every write is fenced by Raft
// index: a row already stored is replaced only when the incoming TALLY_INDEX is greater
// than the stored one. Writing the same rows twice changes nothing, and a deposed leader
// flushing late cannot make a row go back. On MySQL the fence is
// INSERT … ON DUPLICATE KEY UPDATE c = IF(VALUES(TALLY_INDEX) > TALLY_INDEX, VALUES(c), c)
// for every column, with TALLY_INDEX assigned last (MySQL's assignments see the columns
// already assigned); on SQLite INSERT … ON CONFLICT (key) DO UPDATE … WHERE
// excluded.TALLY_INDEX > t.TALLY_INDEX.
//
// # Mirrored tables
//
// A `@store(type='rdbms')` table (Tables) is one SQL table in Siddhi's RDBMS layout: named
// after the table (or table.name), one column per attribute with the types above (bool is
// BOOLEAN) and field.length, the @primaryKey, one index <Table>_INDEX over the @index
// attributes. It has no column of Tally's: each write is one transaction that first locks
// the table's row of TALLY_TABLE_FENCE (TABLE_NAME, APP_NAME, SHARD_ID, RAFT_INDEX) and
// writes nothing when that holds the write's index or a later one, then deletes the
// changed keys (or, for a table written whole, every row), inserts the rows as they are
// now and records the index. An existing table with other columns or another key (or, on
// MySQL, narrower string columns) is refused with ErrIncompatibleTable and never altered.
// On MySQL a primary key wider than 3072 bytes is not declared: an index <Table>_KEY over
// prefixes of its columns stands in for it.
//
// # Opening while the database is away
//
// Open refuses what needs an operator (a malformed DSN, a wrong password, a database that
// does not exist) but not a MySQL server that is down or unreachable: a node restarted
// during a database outage must come up, keep its rows in memory and flush once the store
// is back. The tables' collation is then picked on first contact, and every call until
// then fails with the connection error, which the flusher retries.
//
// # Deviations from Siddhi
//
// SHARD_ID is always a column and always in the primary key, whether or not the app says
// @PartitionById: every group writes its own partial rows. TALLY_INDEX is Tally's own
// column. Ensure refuses a table without SHARD_ID in its key (Siddhi's layout before
// partitioning) or without TALLY_INDEX, and prints the ALTER TABLE that migrates it, rather
// than swallowing the mismatch as Siddhi does. Purge deletes only the calling shard's rows.
//
// # Reading the tables from outside
//
// A table holds partial rows: one per (arrival bucket, shard, event bucket, group). An
// external SQL reader totals them by bucket and group across shards and arrival buckets,
// on AGG_TIMESTAMP in arrival-time mode:
//
//	SELECT AGG_TIMESTAMP, symbol, SUM(AGG_SUM_quantity) AS total,
//	       SUM(AGG_SUM_price) / SUM(AGG_COUNT) AS avgPrice
//	FROM TradeAggregation_HOURS GROUP BY AGG_TIMESTAMP, symbol
//
// and on AGG_EVENT_TIMESTAMP in event-time mode (GROUP BY AGG_EVENT_TIMESTAMP, symbol).
// Minimums and maximums total with MIN and MAX; distinct counts need the sets decoded and
// united, which agg.Plan does for Tally's own queries.
package store
