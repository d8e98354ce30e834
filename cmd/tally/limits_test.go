package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServeConfig_Limits(t *testing.T) {
	cfg, err := load(t, "--id", "n1")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxKeys != 1_000_000 || cfg.MaxSubscribers != 0 || cfg.ProducerTTL != 0 || cfg.MaxWait != 0 {
		t.Errorf("defaults: %+v", cfg)
	}
	cfg, err = load(t, "--id", "n1", "--max-keys", "0", "--max-subscribers", "5", "--producer-ttl", "2h", "--max-wait", "3s")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxKeys != 0 || cfg.MaxSubscribers != 5 || cfg.ProducerTTL != 2*time.Hour || cfg.MaxWait != 3*time.Second {
		t.Errorf("flags: keys %d subscribers %d ttl %s wait %s", cfg.MaxKeys, cfg.MaxSubscribers, cfg.ProducerTTL, cfg.MaxWait)
	}
	nc := nodeConfig(cfg, 0, t.TempDir(), "0", nil, nil)
	if nc.MaxKeys != 0 || nc.ProducerTTL != 2*time.Hour {
		t.Errorf("node config: keys %d ttl %s", nc.MaxKeys, nc.ProducerTTL)
	}
	if _, err := load(t, "--id", "n1", "--max-keys", "-1"); err == nil {
		t.Error("--max-keys -1 accepted")
	}
}

// TestReplay_TimesOutOfRange: tally replay refuses a ts or an event time outside years
// 0001-9999, naming the line.
func TestReplay_TimesOutOfRange(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "a.siddhi")
	if err := os.WriteFile(app, []byte(`@app:name('R') define stream S (k string, ts long);
define aggregation A from S select k, count() as n group by k aggregate by ts every sec;`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ events, want string }{
		{`{"ts":-9223372036854775808}`, "-:1: ts -9223372036854775808 is outside years 0001 to 9999"},
		{`{"ts":1}` + "\n" + `{"stream":"S","ts":2,"data":{"k":"a","ts":253402300800000}}`, "-:2: engine: bad event: event 0 of stream S: attribute ts (the event time of aggregation A)"},
	} {
		err := replay(t.Context(), replayConfig{apps: []string{app}, events: "-"}, strings.NewReader(c.events), io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %s", c.events, err, c.want)
		}
	}
}
