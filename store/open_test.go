package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tally-db/tally/engine/agg"
	"github.com/tally-db/tally/internal/mariadbtest"
	"github.com/tally-db/tally/siddhiql"
)

func TestOpen_Errors(t *testing.T) {
	const secret = "s3cretPW"
	for _, c := range []struct {
		name, dsn string
		bad       bool   // wraps ErrBadDSN
		mention   string // the error names this
	}{
		{"empty", "", true, "sqlite://"},
		{"no scheme", "root:" + secret + "@tcp(127.0.0.1:3306)/db", true, "mysql://"},
		{"unknown scheme", "postgres://u:" + secret + "@host/db", true, `unknown scheme "postgres"`},
		{"bad mysql DSN", "mysql://u:" + secret + "@tcp(127.0.0.1:3306/db", true, "mysql"},
		{"bad mysql param", "mysql://u:" + secret + "@tcp(127.0.0.1:3306)/db?timeout=soon", true, "mysql"},
		{"empty sqlite path", "sqlite://", true, "no file path"},
		{"sqlite in a missing directory", "sqlite://" + filepath.Join(t.TempDir(), "no", "such", "dir", "x.db"), false, "open sqlite"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			begin := time.Now()
			st, err := Open(ctx, c.dsn, quietLogger())
			if err == nil {
				st.Close()
				t.Fatal("Open succeeded")
			}
			if d := time.Since(begin); d > 5*time.Second {
				t.Errorf("Open took %s", d)
			}
			if errors.Is(err, ErrBadDSN) != c.bad {
				t.Errorf("errors.Is(err, ErrBadDSN) = %v, want %v: %v", !c.bad, c.bad, err)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("error %q does not mention %q", err, c.mention)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the password: %q", err)
			}
		})
	}
}

// TestOpen_MySQLUnreachable: a node must start while its database is away, so Open
// succeeds and the first use reports the outage (without the password).
func TestOpen_MySQLUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	const secret = "s3cretPW"
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	st, err := Open(ctx, "mysql://u:"+secret+"@tcp("+closed+")/db?timeout=1s", quietLogger())
	if err != nil {
		t.Fatalf("Open with the server down: %v", err)
	}
	defer st.Close()
	err = st.Ensure(ctx, compile(t, tradeApp, "TradeAggregation"))
	if err == nil || !strings.Contains(err.Error(), closed) || strings.Contains(err.Error(), secret) {
		t.Fatalf("Ensure with the server down: %v", err)
	}

	// A server that accepts connections and never answers (a partition): Open returns
	// within the connect timeout, not the 30 s read timeout.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer func() { mute.Close(); <-done }()
	go func() {
		defer close(done)
		var held []net.Conn
		for {
			c, err := mute.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	begin := time.Now()
	st2, err := Open(ctx, "mysql://u@tcp("+mute.Addr().String()+")/db?timeout=1s", quietLogger())
	if err != nil {
		t.Fatalf("Open with a mute server: %v", err)
	}
	st2.Close()
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("Open with a mute server took %s", d)
	}
}

// TestOpen_MySQLComesBack: opened while MariaDB is stopped, the store works once it runs.
// A wrong database name is an operator's error, refused at once.
func TestOpen_MySQLComesBack(t *testing.T) {
	_, srv := mariadbtest.Start(t)
	dsn, err := srv.CreateDatabase(t.Context(), "comes_back")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := Open(t.Context(), srv.DSNFor("no_such_db"), quietLogger()); err == nil {
		st.Close()
		t.Fatal("Open of a database that does not exist succeeded")
	} else if !strings.Contains(err.Error(), "no_such_db") {
		t.Errorf("error does not name the database: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	st, err := Open(t.Context(), dsn+"?timeout=1s", quietLogger())
	if err != nil {
		t.Fatalf("Open with MariaDB stopped: %v", err)
	}
	defer st.Close()
	def := compile(t, tradeApp, "TradeAggregation")
	if err := st.Ensure(t.Context(), def); err == nil {
		t.Fatal("Ensure succeeded with MariaDB stopped")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := st.Ensure(t.Context(), def); err != nil {
		t.Fatalf("Ensure after MariaDB came back: %v", err)
	}
	s := newState(t, def)
	add(t, s, 7, 1514783400000, trade("wso2", 10, 3, 1514783400000))
	rows := s.Rows(siddhiql.Hours)
	if n, err := st.Upsert(t.Context(), def, siddhiql.Hours, "s1", rows); err != nil || n != len(rows) {
		t.Fatalf("Upsert after MariaDB came back: %d rows, %v", n, err)
	}
	got, err := st.Read(t.Context(), def, siddhiql.Hours, 0, 1<<62)
	if err != nil || len(got) != len(rows) {
		t.Fatalf("Read: %d rows, %v", len(got), err)
	}
}

func TestMySQLPassword(t *testing.T) {
	for dsn, want := range map[string]string{
		"u:p@tcp(h:1)/db":          "p",
		"u:p:a@ss@tcp(h:1)/db?x=y": "p:a@ss",
		"u@tcp(h:1)/db":            "",
		"tcp(h:1)/db":              "",
		"u:p/w@tcp(h:1)/db":        "p/w",
	} {
		if got := mysqlPassword(dsn); got != want {
			t.Errorf("mysqlPassword(%q) = %q, want %q", dsn, got, want)
		}
	}
}

// TestTwoStores is two processes' worth of stores on one database writing at once: on
// SQLite the busy timeout and immediate transactions must keep "database is locked" away;
// on MySQL concurrent upserts must not fail on lock conflicts.
func TestTwoStores(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		def := compile(t, tradeApp, "TradeAggregation")
		stores := []Rollups{e.st}
		st, err := Open(t.Context(), e.dsn, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		stores = append(stores, st)
		concurrentUpserts(t, def, stores)
	})
}

func concurrentUpserts(t *testing.T, def *agg.Def, stores []Rollups) {
	const rounds, perRound = 40, 50
	var wg sync.WaitGroup
	errs := make(chan error, 4*rounds)
	for i, st := range stores {
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := st.Ensure(t.Context(), def); err != nil {
					errs <- err
					return
				}
				shard := fmt.Sprintf("shard-%d", i)
				for r := range rounds {
					rows := make([]*agg.Row, perRound)
					for k := range rows {
						rows[k] = fenceRow(def, fmt.Sprintf("w%d-%d", w, k), int64(r), uint64(r+1))
					}
					if _, err := st.Upsert(t.Context(), def, siddhiql.Hours, shard, rows); err != nil {
						errs <- err
						return
					}
					if _, err := st.Read(t.Context(), def, siddhiql.Hours, 0, 1<<62); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	srs, err := stores[0].Read(t.Context(), def, siddhiql.Hours, 0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	if len(srs) != 2*2*perRound {
		t.Fatalf("%d rows, want %d", len(srs), 2*2*perRound)
	}
	for _, sr := range srs {
		if sr.Row.Index != rounds || sr.Row.Bases[2].I != rounds-1 {
			t.Fatalf("row %s %v: index %d, quantity %d; want the last round", sr.Shard, sr.Row.Group, sr.Row.Index, sr.Row.Bases[2].I)
		}
	}
}
