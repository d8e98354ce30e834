package main

import (
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServeConfig_SinkAllow(t *testing.T) {
	dir := t.TempDir()
	cfg, err := load(t, "--id", "n1", "--data-dir", dir, "--sink-allow", "hooks.example,10.0.0.0/8", "--sink-allow", "fd00::/8")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.sinkPolicy.Rules(), " "); got != "hooks.example 10.0.0.0/8 fd00::/8" {
		t.Errorf("rules %q", got)
	}
	if ncfg := nodeConfig(cfg, 0, dir, "0", nil, slog.New(slog.DiscardHandler)); ncfg.SinkPolicy != cfg.sinkPolicy {
		t.Error("the sink policy does not reach the node's configuration")
	}
	if err := cfg.sinkPolicy.CheckURL("http://evil.example/x"); err == nil || !strings.Contains(err.Error(), "--sink-allow hooks.example,10.0.0.0/8,fd00::/8") {
		t.Errorf("evil.example: %v", err)
	}
	if _, err := load(t, "--id", "n1", "--data-dir", dir, "--sink-allow", "10.0.0.0/99"); err == nil || !strings.Contains(err.Error(), `--sink-allow "10.0.0.0/99"`) {
		t.Errorf("bad rule: %v", err)
	}
	cfg, err = load(t, "--id", "n1", "--data-dir", dir)
	if err != nil || cfg.sinkPolicy != nil {
		t.Errorf("no rules: policy %v, err %v", cfg.sinkPolicy, err)
	}
}

// TestServe_FileModes: the files serve writes in the data dir (cluster.json, shard-id) are
// 0600 in 0700 directories, and an older, readable data dir is tightened.
func TestServe_FileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, _ := startServe(t, "--id", "n1", "--data-dir", dir, "--bootstrap", "--groups", "2", "--shard-id", "s",
		"--http-addr", freeAddr(t), "--raft-addr", freeAddr(t))
	waitReady(t, cfg.HTTPAddr) // the groups' replicas are open and lead
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s is %#o, want %#o", path, info.Mode().Perm(), want)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 { // data, cluster.json, controller, its raft.db and snapshots, group-0 and group-1 with theirs
		t.Errorf("walked %d entries, want at least 10", n)
	}
}

// waitReady polls addr's /readyz until it answers 200 (at most 20 s).
func waitReady(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready within 20 s", addr)
}
