package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func load(t *testing.T, args ...string) (serveConfig, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return loadServeConfig(fs, args)
}

func TestServeConfig_FileThenFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tally.yaml")
	yaml := `id: n7
data-dir: ` + filepath.Join(dir, "data") + `
http-addr: 127.0.0.1:9000
raft-addr: 127.0.0.1:9001
join: [http://127.0.0.1:7070]
siddhi:
  properties:
    shardId: wso2-si-1
    aggTimeZone: Asia/Kolkata
store:
  dsn: mysql://u:p@tcp(127.0.0.1:3306)/tally
`
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := load(t, "--config", file, "--http-addr", "127.0.0.1:9100")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ID != "n7" || cfg.HTTPAddr != "127.0.0.1:9100" || cfg.RaftAddr != "127.0.0.1:9001" || cfg.ShardID != "wso2-si-1" || !cfg.shardIDSet ||
		cfg.AggTimeZone != "Asia/Kolkata" || cfg.StoreDSN != "mysql://u:p@tcp(127.0.0.1:3306)/tally" || len(cfg.Join) != 1 {
		t.Errorf("config = %+v", cfg)
	}
	// Defaults: shard ID "0", an SQLite file beside the data dir.
	cfg, err = load(t, "--id", "n1", "--data-dir", filepath.Join(dir, "d1"), "--bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ShardID != "0" || cfg.shardIDSet || cfg.StoreDSN != "sqlite://"+filepath.Join(dir, "tally-store.db") {
		t.Errorf("defaults: shard %q (set %v), store %q", cfg.ShardID, cfg.shardIDSet, cfg.StoreDSN)
	}
}

func TestServeConfig_Errors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("id: n1\nhttp_addr: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{}, "--id is required"},
		{[]string{"--id", "n1", "--http-addr", "nope"}, `--http-addr "nope" is not host:port`},
		{[]string{"--id", "n1", "--http-addr", "127.0.0.1:1", "--raft-addr", "127.0.0.1:1"}, "must differ"},
		{[]string{"--id", "n1", "--bootstrap", "--join", "http://x:1"}, "exclude each other"},
		{[]string{"--id", "n1", "--join", "x:1"}, "must be an HTTP URL"},
		{[]string{"--id", "n1", "--agg-time-zone", "Mars/Base"}, "--agg-time-zone"},
		{[]string{"--id", "n1", "--log-level", "loud"}, "--log-level"},
		{[]string{"--config", bad}, `line 2: unknown key "http_addr" (did you mean http-addr?)`},
		{[]string{"--config", filepath.Join(dir, "missing.yaml")}, "read config"},
		{[]string{"--id", "n1", "extra"}, "unexpected arguments"},
	}
	for _, c := range cases {
		if _, err := load(t, c.args...); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%v: err = %v, want %q", c.args, err, c.msg)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"mysql://root:secret@tcp(127.0.0.1:3306)/tally": "mysql://root:xxxxx@tcp(127.0.0.1:3306)/tally",
		"mysql://root@tcp(127.0.0.1:3306)/tally":        "mysql://root@tcp(127.0.0.1:3306)/tally",
		"sqlite:///var/lib/tally/store.db":              "sqlite:///var/lib/tally/store.db",
	} {
		if got := redactDSN(in); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}
