package raftnode

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tally-db/tally/engine/expr"
	etable "github.com/tally-db/tally/engine/table"
	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/internal/mariadbtest"
	"github.com/tally-db/tally/store"
)

var _ TableStore = store.Tables(nil)

const mirrorApp = `@app:name('M')
define stream MS (k string, v long);
@store(type='rdbms', datasource='APIM_ANALYTICS_DB') @primaryKey('k')
define table MT (k string, v long);
@store(type='rdbms')
define table ML (k string, v long);
from MS[v >= 0] select k, v update or insert into MT set MT.v = v on MT.k == k;
from MS[v < 0] select k delete MT on MT.k == k;
from MS select k, v insert into ML;
`

// sqlTable reads a mirrored table as sorted "k=v" strings.
func sqlTable(t *testing.T, db *sql.DB, name string) []string {
	t.Helper()
	rows, err := db.Query("SELECT k, v FROM " + name)
	if err != nil {
		return []string{err.Error()}
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s=%d", k, v))
	}
	slices.Sort(out)
	return out
}

// engineTable reads a table of app M on node as sorted "k=v" strings.
func engineTable(node *Node, name string) []string {
	var out []string
	node.fsm.Read(func(e fsm.View) {
		a, _ := e.App("M")
		tb, _ := a.Table(name)
		for _, r := range tb.Rows() {
			out = append(out, fmt.Sprintf("%s=%d", r[0].S, r[1].I))
		}
	})
	slices.Sort(out)
	return out
}

func ingestMS(t *testing.T, node *Node, seq uint64, k string, v int64) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	p := fsm.Part{Stream: "MS", ProducerID: "p", Seq: seq, Events: []expr.Row{{expr.String(k), expr.Long(v)}}}
	res, err := node.Ingest(ctx, []fsm.Part{p})
	if err != nil || res.Parts[0].Err != nil {
		t.Fatalf("ingest %s=%d: %v %+v", k, v, err, res)
	}
	return res.Index
}

// TestFlush_StoreTable: the leader mirrors @store(type='rdbms') tables to the shared store
// (SQLite and MariaDB): after inserts, updates and deletes (by queries and on-demand
// writes) the SQL tables hold exactly the tables' rows, every replica forgets what was
// written, and a deposed leader flushing an older capture late changes nothing.
func TestFlush_StoreTable(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "store.db")
		raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		testFlushStoreTable(t, "sqlite://"+path, raw)
	})
	t.Run("mysql", func(t *testing.T) {
		dsn, _ := mariadbtest.Start(t)
		raw, err := sql.Open("mysql", strings.TrimPrefix(dsn, "mysql://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		testFlushStoreTable(t, dsn, raw)
	})
}

func testFlushStoreTable(t *testing.T, dsn string, raw *sql.DB) {
	st, err := store.Open(t.Context(), dsn, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := newCluster(t, 3, withStore(st, 1_000_000))
	leader := c.waitLeader(testTimeout)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if _, _, err := leader.Deploy(ctx, mirrorApp); err != nil {
		t.Fatal(err)
	}
	// Deploy prepared the tables: dashboards find them before the first row.
	if got := sqlTable(t, raw, "MT"); len(got) != 0 {
		t.Fatalf("MT after deploy = %v, want an empty table", got)
	}
	eventually(t, testTimeout, func() bool { return leader.ShardID() == "shard-a" }, "shard ID replicated")

	ingestMS(t, leader, 1, "a", 1)
	ingestMS(t, leader, 2, "b", 2)
	old := ingestMS(t, leader, 3, "c", 3)
	want := []string{"a=1", "b=2", "c=3"}
	eventually(t, testTimeout, func() bool { return slices.Equal(sqlTable(t, raw, "MT"), want) }, "MT reaches %v (is %v)", want, sqlTable(t, raw, "MT"))
	// What a leader deposed at index old would flush late: its view of MT then, written
	// whole.
	var sd *etable.StoreDef
	leader.fsm.Read(func(e fsm.View) {
		a, _ := e.App("M")
		tb, _ := a.Table("MT")
		sd = tb.Store()
	})
	stale := capture{index: old, shard: "shard-a", tables: []capturedTable{{app: "M", name: "MT", sd: sd,
		changes: etable.Changes{Replace: true, Rows: []expr.Row{{expr.String("a"), expr.Long(100)}, {expr.String("z"), expr.Long(1)}}}}}}

	ingestMS(t, leader, 4, "b", 20) // update
	ingestMS(t, leader, 5, "a", -1) // delete
	if _, err := leader.TableWrite(ctx, "M", "delete MT on MT.k == 'c'"); err != nil {
		t.Fatal(err)
	}
	if _, err := leader.TableWrite(ctx, "M", "select 'd' as k, 4L as v insert into MT"); err != nil {
		t.Fatal(err)
	}
	want = []string{"b=20", "d=4"}
	eventually(t, testTimeout, func() bool { return slices.Equal(sqlTable(t, raw, "MT"), want) }, "MT reaches %v (is %v)", want, sqlTable(t, raw, "MT"))
	if got := engineTable(leader, "MT"); !slices.Equal(got, want) {
		t.Fatalf("the engine's MT = %v, the SQL table %v", got, want)
	}
	wantLog := []string{"a=-1", "a=1", "b=2", "b=20", "c=3"}
	eventually(t, testTimeout, func() bool { return slices.Equal(sqlTable(t, raw, "ML"), wantLog) }, "ML reaches %v (is %v)", wantLog, sqlTable(t, raw, "ML"))

	// Every replica forgets the written changes once KindFlushed reaches it.
	for _, n := range c.live() {
		eventually(t, testTimeout, func() bool {
			pending := 0
			n.fsm.Read(func(e fsm.View) {
				a, _ := e.App("M")
				for _, tb := range a.StoreTables() {
					if ch := tb.Changes(); !ch.Empty() {
						pending++
					}
				}
			})
			return pending == 0
		}, "%s forgets flushed table changes", n.ID())
	}

	// A deposed leader flushing its older capture late is turned away by the fence.
	applied, err := leader.flushTables(ctx, stale)
	if err != nil || applied {
		t.Fatalf("stale flush: applied %v, err %v", applied, err)
	}
	if got := sqlTable(t, raw, "MT"); !slices.Equal(got, want) {
		t.Fatalf("after the stale flush MT = %v, want %v", got, want)
	}

	// A new leader carries on where the old one stopped.
	if err := leader.raft.LeadershipTransfer().Error(); err != nil {
		t.Fatal(err)
	}
	next := c.waitLeader(testTimeout)
	ingestMS(t, next, 6, "e", 5)
	want = []string{"b=20", "d=4", "e=5"}
	eventually(t, testTimeout, func() bool { return slices.Equal(sqlTable(t, raw, "MT"), want) }, "MT reaches %v under the new leader (is %v)", want, sqlTable(t, raw, "MT"))

	// A fence past the group's whole log (another cluster wrote the database under this
	// shard ID) fails the flush, saying so, and loses nothing once it is cleared.
	if _, err := raw.Exec("UPDATE TALLY_TABLE_FENCE SET RAFT_INDEX = 1000000000 WHERE TABLE_NAME = 'MT'"); err != nil {
		t.Fatal(err)
	}
	ingestMS(t, next, 7, "f", 6)
	eventually(t, testTimeout, func() bool {
		err := next.FlushError()
		return err != nil && strings.Contains(err.Error(), "another cluster wrote this database under shard ID \"shard-a\"")
	}, "the flush reports the foreign fence (error: %v)", next.FlushError())
	if got := sqlTable(t, raw, "MT"); !slices.Equal(got, want) {
		t.Fatalf("MT changed under a foreign fence: %v", got)
	}
	if _, err := raw.Exec("UPDATE TALLY_TABLE_FENCE SET RAFT_INDEX = 0 WHERE TABLE_NAME = 'MT'"); err != nil {
		t.Fatal(err)
	}
	want = []string{"b=20", "d=4", "e=5", "f=6"}
	eventually(t, testTimeout, func() bool { return slices.Equal(sqlTable(t, raw, "MT"), want) && next.FlushError() == nil },
		"MT reaches %v once the fence is cleared (is %v)", want, sqlTable(t, raw, "MT"))
}

// TestDeploy_IncompatibleStoreTable: an existing SQL table Tally cannot write refuses the
// deploy with the reason, and keeps its rows.
func TestDeploy_IncompatibleStoreTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	st, err := store.Open(t.Context(), "sqlite://"+path, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	if _, err := raw.Exec(`CREATE TABLE "MT" (k TEXT PRIMARY KEY, other TEXT)`); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`INSERT INTO "MT" VALUES ('keep', 'x')`); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, 1, withStore(st, 1_000_000))
	leader := c.waitLeader(testTimeout)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, _, err = leader.Deploy(ctx, mirrorApp)
	if err == nil || !strings.Contains(err.Error(), "lacks the columns v of table MT") {
		t.Fatalf("deploy: err = %v", err)
	}
	var n int
	if err := raw.QueryRow(`SELECT COUNT(*) FROM "MT" WHERE k = 'keep'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the existing table's row: %d, %v", n, err)
	}
}
