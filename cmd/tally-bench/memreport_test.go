package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMemoryReport: the memory step's figure is the RSS measured with every symbol
// acknowledged, judged against 1 GiB; a run that fell short is missed, never extrapolated.
func TestMemoryReport(t *testing.T) {
	for _, c := range []struct {
		name, keys, rss string
		want, notWant   []string
	}{
		{"met", "1000000", "900000", []string{"RSS per replica at 1,000,000 keys | 879 MiB (largest replica) with 1,000,000 of 1,000,000", "| < 1024 MiB | met"}, nil},
		{"over", "1000000", "1258291", []string{"**missed**: 205 MiB over"}, nil},
		{"short", "550000", "600000", []string{"**missed**: only 550,000 of 1,000,000 symbols acknowledged within the step's 900 s (not extrapolated)"}, []string{"extrapolated linearly", "| met"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			mem := "keys=" + c.keys + "\ntarget_keys=1000000\nload_s=300\nmax_s=900\nmem_limit=1GiB\nsettle_s=3\nbase_rss_kb_max=23000\n" +
				"rss_kb_n1=" + c.rss + "\nrss_kb_n2=500000\nrss_kb_n3=400000\n"
			if err := os.WriteFile(filepath.Join(dir, "memory.txt"), []byte(mem), 0o644); err != nil {
				t.Fatal(err)
			}
			r := &report{dir: dir}
			row, note := r.memory()
			for _, w := range c.want {
				if !strings.Contains(row, w) {
					t.Errorf("row %q lacks %q", row, w)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(row+note, w) {
					t.Errorf("report %q has %q", row+note, w)
				}
			}
			if !strings.Contains(note, "`--memory-limit 1GiB`") || len(r.problems) > 0 {
				t.Errorf("note %q, problems %v", note, r.problems)
			}
		})
	}
	r := &report{dir: t.TempDir()}
	if row, _ := r.memory(); !strings.HasSuffix(row, "| not measured") {
		t.Errorf("without memory.txt: row %q, want not measured", row)
	}
}

func TestCPUPerEvent(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "g1_b1000.cpu"), []byte("cpu_ticks=450\nclk_tck=100\nnodes=1 2 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &report{dir: dir}
	// 4.5 s of CPU over 1,000,000 events: 4.5 µs each.
	if got := r.cpuPerEventUS("g1_b1000.cpu", 1_000_000); math.Abs(got-4.5) > 1e-9 {
		t.Errorf("cpuPerEventUS = %v, want 4.5", got)
	}
	if got := r.cpuPerEventUS("missing.cpu", 1000); !math.IsNaN(got) || len(r.problems) == 0 {
		t.Errorf("a missing file gives %v and problems %v; want NaN and a problem noted", got, r.problems)
	}
}
