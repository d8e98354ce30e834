package main

import (
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"2GiB": 2 << 30, "512MiB": 512 << 20, "1.5GiB": 3 << 29, "1GB": 1e9, "4096KiB": 4 << 20,
		"1073741824": 1 << 30, "1048576B": 1 << 20, " 3 GiB ": 3 << 30,
	} {
		got, err := parseBytes(in)
		if err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "2XB", "-1GiB", "1e9", "0x10MiB", "NaN", "Inf", "12", "2EiB", "two GiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}

func TestServeConfig_MemoryLimit(t *testing.T) {
	dir := t.TempDir()
	cfg, err := load(t, "--id", "n1", "--data-dir", filepath.Join(dir, "d"), "--memory-limit", "2GiB")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.memoryLimit != 2<<30 || cfg.MaxUnflushedRows != 524288 {
		t.Fatalf("memoryLimit = %d, max unflushed rows %d; want %d and 524288 (one per 4 KiB)", cfg.memoryLimit, cfg.MaxUnflushedRows, 2<<30)
	}
	if cfg, err = load(t, "--id", "n1", "--data-dir", filepath.Join(dir, "d"), "--memory-limit", "1GiB", "--max-unflushed-rows", "5000"); err != nil || cfg.MaxUnflushedRows != 5000 {
		t.Fatalf("--max-unflushed-rows given: %d, %v; want it kept (5000)", cfg.MaxUnflushedRows, err)
	}
	if cfg, err = load(t, "--id", "n1", "--data-dir", filepath.Join(dir, "d"), "--memory-limit", "64GiB"); err != nil || cfg.MaxUnflushedRows != 1_000_000 {
		t.Fatalf("--memory-limit 64GiB: max unflushed rows %d, %v; want the default 1,000,000 at most", cfg.MaxUnflushedRows, err)
	}
	if cfg, err = load(t, "--id", "n1", "--data-dir", filepath.Join(dir, "d")); err != nil || cfg.MaxUnflushedRows != 0 || cfg.memoryLimit != 0 {
		t.Fatalf("without --memory-limit: max unflushed rows %d, limit %d, %v; want raftnode's default", cfg.MaxUnflushedRows, cfg.memoryLimit, err)
	}
	file := filepath.Join(dir, "tally.yaml")
	if err := os.WriteFile(file, []byte("id: n2\nmemory-limit: 512MiB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, err = load(t, "--config", file, "--data-dir", filepath.Join(dir, "d")); err != nil || cfg.memoryLimit != 512<<20 {
		t.Fatalf("from the file: memoryLimit = %d, %v; want %d", cfg.memoryLimit, err, 512<<20)
	}
	_, err = load(t, "--id", "n1", "--data-dir", filepath.Join(dir, "d"), "--memory-limit", "lots")
	if err == nil || !strings.Contains(err.Error(), "--memory-limit") || !strings.Contains(err.Error(), `"lots"`) {
		t.Fatalf("--memory-limit lots: err = %v, want one naming the flag and the value", err)
	}
}

func TestApplyMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	noEnv := func(string) string { return "" }

	if got := (serveConfig{}).applyMemoryLimit(noEnv, logger); got != 0 || debug.SetMemoryLimit(-1) != prev {
		t.Fatalf("without --memory-limit: set %d, runtime limit %d; want none", got, debug.SetMemoryLimit(-1))
	}
	cfg := serveConfig{MemoryLimit: "1GiB", memoryLimit: 1 << 30}
	env := func(k string) string {
		if k == "GOMEMLIMIT" {
			return "300MiB"
		}
		return ""
	}
	if got := cfg.applyMemoryLimit(env, logger); got != 0 || debug.SetMemoryLimit(-1) != prev {
		t.Fatalf("with GOMEMLIMIT in the environment: set %d, runtime limit %d; want it left alone", got, debug.SetMemoryLimit(-1))
	}
	want := int64(math.Floor(0.9 * (1 << 30)))
	if got := cfg.applyMemoryLimit(noEnv, logger); got != want || debug.SetMemoryLimit(-1) != want {
		t.Fatalf("--memory-limit 1GiB: set %d, runtime limit %d; want %d", got, debug.SetMemoryLimit(-1), want)
	}
}
