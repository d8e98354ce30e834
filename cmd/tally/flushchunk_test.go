package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeConfig_FlushChunkRows: --flush-chunk-rows (or flush-chunk-rows in the file) sets
// the rows per flush chunk; zero leaves raftnode's default; a negative count is refused,
// naming the flag.
func TestServeConfig_FlushChunkRows(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "d")
	cfg, err := load(t, "--id", "n1", "--data-dir", data, "--flush-chunk-rows", "5000")
	if err != nil || cfg.FlushChunkRows != 5000 {
		t.Fatalf("--flush-chunk-rows 5000: %d, %v; want 5000", cfg.FlushChunkRows, err)
	}
	if cfg, err = load(t, "--id", "n1", "--data-dir", data); err != nil || cfg.FlushChunkRows != 0 {
		t.Fatalf("without the flag: %d, %v; want 0 (raftnode's default)", cfg.FlushChunkRows, err)
	}
	file := filepath.Join(dir, "tally.yaml")
	if err := os.WriteFile(file, []byte("id: n2\nflush-chunk-rows: 700\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, err = load(t, "--config", file, "--data-dir", data); err != nil || cfg.FlushChunkRows != 700 {
		t.Fatalf("from the file: %d, %v; want 700", cfg.FlushChunkRows, err)
	}
	_, err = load(t, "--id", "n1", "--data-dir", data, "--flush-chunk-rows", "-1")
	if err == nil || !strings.Contains(err.Error(), "--flush-chunk-rows") {
		t.Fatalf("--flush-chunk-rows -1: err = %v, want one naming the flag", err)
	}
}
