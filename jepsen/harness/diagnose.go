package harness

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	_ "github.com/go-sql-driver/mysql" // the store's rows, for the mismatch report

	"github.com/tally-db/tally/jepsen/check"
)

// diagnoseStore writes store-mismatch.txt when the final stored counts differ from the live
// ones: for the first few differing (key, bucket)s, the raw rows of the seconds table (every
// arrival bucket, with the Raft index of each row's last change) and what each node answers
// at consistency=stale, so the report shows which side is off and since when.
func diagnoseStore(ctx context.Context, dir, dsn string, w *workload, live, stored check.Counts) error {
	type kb struct {
		key    string
		bucket int64
	}
	var diff []kb
	for _, k := range sortedUnion(live, stored) {
		for _, b := range sortedUnion(live[k], stored[k]) {
			if live[k][b] != stored[k][b] {
				diff = append(diff, kb{k, b})
			}
		}
	}
	if len(diff) == 0 {
		return nil
	}
	f, err := os.Create(filepath.Join(dir, "store-mismatch.txt"))
	if err != nil {
		return err
	}
	defer f.Close()
	db, err := sql.Open("mysql", strings.TrimPrefix(dsn, "mysql://"))
	if err != nil {
		return err
	}
	defer db.Close()
	for _, d := range diff[:min(len(diff), 3)] {
		fmt.Fprintf(f, "key %s bucket %d: live %d, stored %d\n", d.key, d.bucket, live[d.key][d.bucket], stored[d.key][d.bucket])
		if err := dumpRows(ctx, f, db, d.key, d.bucket); err != nil {
			fmt.Fprintf(f, "  store rows: %v\n", err)
		}
		for _, n := range w.c.members() {
			c, err := w.counts(ctx, n, "stale")
			if err != nil {
				fmt.Fprintf(f, "  %s stale: %v\n", n.id, err)
				continue
			}
			fmt.Fprintf(f, "  %s stale: %d\n", n.id, c[d.key][d.bucket])
		}
	}
	return nil
}

func dumpRows(ctx context.Context, w io.Writer, db *sql.DB, key string, bucket int64) error {
	rows, err := db.QueryContext(ctx, "SELECT * FROM EventAgg_SECONDS WHERE `key` = ? AND AGG_EVENT_TIMESTAMP = ? ORDER BY AGG_TIMESTAMP", key, bucket)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  %s\n", strings.Join(cols, "\t"))
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		s := make([]string, len(vals))
		for i, v := range vals {
			s[i] = string(v)
		}
		fmt.Fprintf(w, "  %s\n", strings.Join(s, "\t"))
	}
	return rows.Err()
}

// sortedUnion is the keys of a and b, sorted, each once.
func sortedUnion[K cmp.Ordered, V any](a, b map[K]V) []K {
	out := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
