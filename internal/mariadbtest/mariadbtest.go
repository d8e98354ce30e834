// Package mariadbtest runs a throwaway MariaDB server for tests: a fresh data directory in a
// temporary directory, a free loopback port, no passwords (--skip-grant-tables).
//
// It never skips: when MariaDB is missing it installs Debian's mariadb-server if the test
// runs as root, and otherwise fails saying what to install. Start is for one test;
// StartMain is for a package's TestMain. Stop, Kill and Restart let system tests take the
// server away and bring it back on the same port with the same data.
package mariadbtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the readiness probe and CreateDatabase
)

// Database is the database Start and StartMain create and DSN names.
const Database = "tally_test"

// ReadyTimeout bounds how long a start or restart waits for the server to accept connections.
const ReadyTimeout = 30 * time.Second

// stopTimeout bounds how long Stop waits after SIGTERM before it kills.
const stopTimeout = 60 * time.Second

// Server is one mariadbd process and its data directory. Its methods are safe for
// concurrent use.
type Server struct {
	dir      string // temporary directory holding everything below
	dataDir  string
	sock     string
	errLog   string
	port     int
	mariadbd string
	user     string
	logf     func(format string, args ...any)

	mu   sync.Mutex
	cmd  *exec.Cmd     // nil when stopped
	done chan struct{} // closed when cmd has exited
}

// Start starts a server for the test and stops it (and removes its files) at cleanup. It
// fails the test when the server cannot be found, installed or started.
func Start(t testing.TB) (dsn string, srv *Server) {
	t.Helper()
	srv, err := start(t.Logf)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("mariadbtest: close: %v", err)
		}
	})
	return srv.DSN(), srv
}

// StartMain starts a server for a whole test binary (TestMain). The caller must Close it
// before os.Exit. It logs to the standard logger.
func StartMain() (*Server, error) {
	return start(log.Printf)
}

func start(logf func(string, ...any)) (*Server, error) {
	mariadbd, installDB, err := binaries(logf)
	if err != nil {
		return nil, err
	}
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("mariadbtest: current user: %w", err)
	}
	dir, err := tempDir()
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, dataDir: filepath.Join(dir, "data"), sock: filepath.Join(dir, "sock"),
		errLog: filepath.Join(dir, "err.log"), mariadbd: mariadbd, user: u.Username, logf: logf}
	if s.port, err = freePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, installDB, "--no-defaults", "--datadir="+s.dataDir,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--user="+s.user).CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadbtest: %s: %w\n%s", installDB, err, out)
	}
	if err := s.Restart(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if _, err := s.CreateDatabase(ctx, Database); err != nil {
		s.Close()
		return nil, err
	}
	logf("mariadbtest: %s ready on 127.0.0.1:%d in %s (data %s)", mariadbd, s.port, time.Since(begin).Round(time.Millisecond), s.dataDir)
	return s, nil
}

// tempDir makes the server's directory, short enough for a Unix socket path.
func tempDir() (string, error) {
	dir, err := os.MkdirTemp("", "mariadbtest-")
	if err == nil && len(dir) > 80 {
		os.RemoveAll(dir)
		dir, err = os.MkdirTemp("/tmp", "mariadbtest-")
	}
	if err != nil {
		return "", fmt.Errorf("mariadbtest: temp dir: %w", err)
	}
	return dir, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("mariadbtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// DSN is the store DSN of the test database: mysql://root@tcp(127.0.0.1:PORT)/tally_test.
func (s *Server) DSN() string { return s.DSNFor(Database) }

// DSNFor is the store DSN of database db on this server.
func (s *Server) DSNFor(db string) string {
	return fmt.Sprintf("mysql://root@tcp(127.0.0.1:%d)/%s", s.port, db)
}

// Port is the server's TCP port; it stays the same across Restart.
func (s *Server) Port() int { return s.port }

// DataDir is the server's data directory; it survives Stop, Kill and Restart.
func (s *Server) DataDir() string { return s.dataDir }

// CreateDatabase creates database name if missing and returns its store DSN.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	db, err := sql.Open("mysql", fmt.Sprintf("root@tcp(127.0.0.1:%d)/?timeout=5s", s.port))
	if err != nil {
		return "", fmt.Errorf("mariadbtest: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+strings.ReplaceAll(name, "`", "``")+"`"); err != nil {
		return "", fmt.Errorf("mariadbtest: create database %s: %w", name, err)
	}
	return s.DSNFor(name), nil
}

// Running reports whether the server process is running.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runningLocked()
}

// runningLocked needs s.mu held.
func (s *Server) runningLocked() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// Restart starts the server on its port and data directory, stopping it first if it runs,
// and waits (at most ReadyTimeout) until it accepts connections.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runningLocked() {
		if err := s.signalLocked(syscall.SIGTERM, stopTimeout); err != nil {
			return err
		}
	}
	cmd := exec.Command(s.mariadbd, "--no-defaults", "--datadir="+s.dataDir, "--socket="+s.sock,
		fmt.Sprintf("--port=%d", s.port), "--bind-address=127.0.0.1", "--skip-grant-tables",
		"--innodb-buffer-pool-size=64M", "--innodb-log-file-size=48M", "--innodb-flush-log-at-trx-commit=1",
		"--log-error="+s.errLog, "--pid-file="+filepath.Join(s.dir, "pid"), "--user="+s.user)
	out, err := os.OpenFile(filepath.Join(s.dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("mariadbtest: %w", err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mariadbtest: start %s: %w", s.mariadbd, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	return s.waitReadyLocked()
}

// waitReadyLocked needs s.mu held.
func (s *Server) waitReadyLocked() error {
	db, err := sql.Open("mysql", fmt.Sprintf("root@tcp(127.0.0.1:%d)/?timeout=1s", s.port))
	if err != nil {
		return fmt.Errorf("mariadbtest: %w", err)
	}
	defer db.Close()
	deadline := time.Now().Add(ReadyTimeout)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("mariadbtest: mariadbd exited during startup; %s ends:\n%s", s.errLog, s.tail())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.signalLocked(syscall.SIGKILL, 10*time.Second)
			return fmt.Errorf("mariadbtest: mariadbd not accepting connections on port %d after %s (%v); %s ends:\n%s",
				s.port, ReadyTimeout, err, s.errLog, s.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down cleanly (SIGTERM, then SIGKILL after a minute). Its data stays.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signalLocked(syscall.SIGTERM, stopTimeout)
}

// Kill kills the server (SIGKILL), as a crash would. Its data stays; Restart recovers it.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signalLocked(syscall.SIGKILL, stopTimeout)
}

// signalLocked sends sig and waits for the exit, killing after wait. It needs s.mu held.
func (s *Server) signalLocked(sig syscall.Signal, wait time.Duration) error {
	if !s.runningLocked() {
		s.cmd = nil
		return nil
	}
	if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("mariadbtest: signal mariadbd: %w", err)
	}
	select {
	case <-s.done:
	case <-time.After(wait):
		s.logf("mariadbtest: mariadbd did not exit %s after %s; killing it", wait, sig)
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
	return nil
}

// Close stops the server and removes its directory.
func (s *Server) Close() error {
	err := s.Stop()
	return errors.Join(err, os.RemoveAll(s.dir))
}

// tail is the end of the server's error log, for failure messages.
func (s *Server) tail() string {
	b, err := os.ReadFile(s.errLog)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
