package raftnode

import (
	"strings"
	"testing"
	"time"
)

func TestConfig_Validate(t *testing.T) {
	valid := DefaultConfig()
	valid.ID, valid.DataDir = "n1", t.TempDir()
	if err := valid.Validate(); err != nil {
		t.Fatalf("default config with ID and DataDir: %v", err)
	}
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   []string // every one must appear in the error
	}{
		{"zero config", func(c *Config) { *c = Config{} }, []string{"Config.ID", "Config.DataDir", "HeartbeatTimeout", "ElectionTimeout",
			"LeaderLeaseTimeout", "CommitTimeout", "SnapshotInterval", "ApplyTimeout", "TickInterval", "MaxBatchEvents", "SnapshotThreshold"}},
		{"no id", func(c *Config) { c.ID = "" }, []string{"Config.ID"}},
		{"no data dir", func(c *Config) { c.DataDir = "" }, []string{"Config.DataDir"}},
		{"negative heartbeat", func(c *Config) { c.HeartbeatTimeout = -time.Second }, []string{"HeartbeatTimeout"}},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = time.Second }, []string{"LeaderLeaseTimeout", "HeartbeatTimeout"}},
		{"negative linger", func(c *Config) { c.Linger = -1 }, []string{"Config.Linger"}},
		{"no batch", func(c *Config) { c.MaxBatchEvents = 0 }, []string{"Config.MaxBatchEvents"}},
		{"no snapshots retained", func(c *Config) { c.SnapshotsRetained = 0 }, []string{"SnapshotsRetained"}},
		{"zero tick", func(c *Config) { c.TickInterval = 0 }, []string{"Config.TickInterval"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.modify(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
			if _, err := Open(c, nil); err == nil {
				t.Error("Open accepted it")
			}
		})
	}
	t.Run("Linger zero is allowed", func(t *testing.T) {
		c := valid
		c.Linger = 0
		if err := c.Validate(); err != nil {
			t.Error(err)
		}
	})
}
