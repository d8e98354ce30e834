package store

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tally-db/tally/internal/mariadbtest"
)

// mariadb is the server the MySQL half of every test runs against, started once.
var mariadb *mariadbtest.Server

func TestMain(m *testing.M) {
	srv, err := mariadbtest.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mariadb = srv
	code := m.Run()
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// env is one backend under test: the store, and a raw connection to inspect its tables.
type env struct {
	kind string // "sqlite" or "mysql"
	dsn  string
	st   Rollups
	raw  *sql.DB
}

var dbSeq atomic.Int64

// quietLogger drops the store's logs (created tables and the like).
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// backends runs f against a fresh SQLite file and a fresh MariaDB database.
func backends(t *testing.T, f func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) {
		f(t, newSQLiteEnv(t, filepath.Join(t.TempDir(), "rollups.db")))
	})
	t.Run("mysql", func(t *testing.T) {
		f(t, newMySQLEnv(t))
	})
}

func newSQLiteEnv(t *testing.T, path string) *env {
	t.Helper()
	dsn := "sqlite://" + path
	st, err := Open(t.Context(), dsn, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return &env{kind: "sqlite", dsn: dsn, st: st, raw: raw}
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_]+`)

func newMySQLEnv(t *testing.T) *env {
	t.Helper()
	name := fmt.Sprintf("t%d_%s", dbSeq.Add(1), unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "_"))
	if len(name) > 60 {
		name = name[:60]
	}
	dsn, err := mariadb.CreateDatabase(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Open(t.Context(), dsn, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	raw, err := sql.Open("mysql", strings.TrimPrefix(dsn, "mysql://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return &env{kind: "mysql", dsn: dsn, st: st, raw: raw}
}

// exec runs SQL on the raw connection, failing the test on error.
func (e *env) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := e.raw.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// q quotes an identifier for the backend.
func (e *env) q(name string) string {
	if e.kind == "mysql" {
		return "`" + name + "`"
	}
	return `"` + name + `"`
}

// tableExists reports whether the backend has table name.
func (e *env) tableExists(t *testing.T, name string) bool {
	t.Helper()
	var query string
	if e.kind == "mysql" {
		query = "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
	} else {
		query = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
	}
	var n int
	if err := e.raw.QueryRow(query, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// count is SELECT COUNT(*) FROM table.
func (e *env) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := e.raw.QueryRow("SELECT COUNT(*) FROM " + e.q(table)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
