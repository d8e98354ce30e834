package mariadbtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// searchDirs are looked in after PATH: Debian puts mariadbd in /usr/sbin, which a non-root
// PATH often lacks.
var searchDirs = []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"}

const installHint = "apt-get install -y --no-install-recommends mariadb-server"

// binaries finds mariadbd and mariadb-install-db, installing Debian's mariadb-server when
// they are missing and the process runs as root.
func binaries(logf func(string, ...any)) (server, installDB string, err error) {
	server, installDB = lookup("mariadbd", "mysqld"), lookup("mariadb-install-db", "mysql_install_db")
	if server != "" && installDB != "" {
		return server, installDB, nil
	}
	if os.Geteuid() != 0 {
		return "", "", fmt.Errorf("mariadbtest: MariaDB is not installed (need mariadbd and mariadb-install-db on PATH or in %v); "+
			"install it with `sudo %s` (Debian/Ubuntu), or run the tests as root so they install it themselves", searchDirs, installHint)
	}
	if err := install(logf); err != nil {
		return "", "", err
	}
	server, installDB = lookup("mariadbd", "mysqld"), lookup("mariadb-install-db", "mysql_install_db")
	if server == "" || installDB == "" {
		return "", "", fmt.Errorf("mariadbtest: installed mariadb-server but still cannot find mariadbd and mariadb-install-db")
	}
	return server, installDB, nil
}

func lookup(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
		for _, d := range searchDirs {
			p := filepath.Join(d, n)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p
			}
		}
	}
	return ""
}

// install runs apt-get, under a file lock so that test binaries started together (go test
// ./...) do not race for dpkg's lock; the one that waited finds the server installed.
func install(logf func(string, ...any)) error {
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "mariadbtest-install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("mariadbtest: install lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("mariadbtest: install lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if lookup("mariadbd", "mysqld") != "" && lookup("mariadb-install-db", "mysql_install_db") != "" {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("mariadbtest: MariaDB is not installed and there is no apt-get to install it: install MariaDB (mariadbd, mariadb-install-db) by hand")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	aptGet := func(args ...string) ([]byte, error) {
		logf("mariadbtest: MariaDB not found; running apt-get %v", args)
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"-o", "DPkg::Lock::Timeout=300"}, args...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	begin := time.Now()
	if _, err := aptGet("install", "-y", "--no-install-recommends", "mariadb-server"); err != nil {
		// A fresh container has no package lists yet.
		if out, err := aptGet("update"); err != nil {
			return fmt.Errorf("mariadbtest: apt-get update: %w\n%s", err, out)
		}
		if out, err := aptGet("install", "-y", "--no-install-recommends", "mariadb-server"); err != nil {
			return fmt.Errorf("mariadbtest: %s: %w\n%s", installHint, err, out)
		}
	}
	logf("mariadbtest: installed mariadb-server in %s", time.Since(begin).Round(time.Second))
	return nil
}
