package mariadbtest

import (
	"database/sql"
	"strings"
	"testing"
	"time"
)

// TestServer_KillRestart starts a server, writes a row, kills the server, restarts it on the
// same port and data directory, and reads the row back.
func TestServer_KillRestart(t *testing.T) {
	begin := time.Now()
	dsn, srv := Start(t)
	t.Logf("started in %s: %s", time.Since(begin).Round(time.Millisecond), dsn)
	if !strings.HasPrefix(dsn, "mysql://root@tcp(127.0.0.1:") || !strings.HasSuffix(dsn, "/"+Database) {
		t.Fatalf("DSN %q", dsn)
	}
	db, err := sql.Open("mysql", strings.TrimPrefix(dsn, "mysql://")+"?timeout=2s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (id BIGINT PRIMARY KEY, v VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO t VALUES (1, 'kept')"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if srv.Running() {
		t.Fatal("running after Kill")
	}
	if err := db.PingContext(ctx); err == nil {
		t.Fatal("ping succeeded while the server is down")
	}
	begin = time.Now()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted after kill in %s", time.Since(begin).Round(time.Millisecond))
	var v string
	if err := db.QueryRowContext(ctx, "SELECT v FROM t WHERE id = 1").Scan(&v); err != nil || v != "kept" {
		t.Fatalf("after restart: %q, %v", v, err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, "SELECT v FROM t WHERE id = 1").Scan(&v); err != nil || v != "kept" {
		t.Fatalf("after stop and restart: %q, %v", v, err)
	}
}
