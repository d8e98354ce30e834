package main

import (
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
