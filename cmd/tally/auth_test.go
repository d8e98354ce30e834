package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServe_BadAuthFile: a users file that cannot be used stops tally serve before it opens
// anything, with an error naming the file and the entry.
func TestServe_BadAuthFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users.json")
	if err := os.WriteFile(path, []byte(`[{"username":"ok","password":"p","perms":["read"]},{"username":"bob","password":"p","perms":["root"]}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "cluster.key")
	if err := os.WriteFile(key, []byte("a cluster secret of enough bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(t, "--id", "n1", "--data-dir", filepath.Join(dir, "data"), "--bootstrap", "--auth", path, "--cluster-key", key)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth != path {
		t.Fatalf("--auth: %q", cfg.Auth)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // a serve that got past the users file would stop at once
	err = serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "--auth: users file "+path) || !strings.Contains(err.Error(), `entry 1 ("bob"): unknown permission "root"`) {
		t.Fatalf("serve with a bad users file: %v", err)
	}
	if _, statErr := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(statErr) {
		t.Errorf("the data dir was created before the users file was checked: %v", statErr)
	}
}
