package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTLSSection: the TLS step's table has each round's events/s and CPU per event (the
// nodes' clock ticks over the acknowledged events), their medians and TLS over plain, with a
// missing run shown as n/a and noted; the median of an even count is the mean of the middle two.
func TestTLSSection(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("tls.txt", "runs=3\n")
	run := func(name string, evs, events, p99 string, ticks string) {
		write(name+".json", `{"clients":8,"events_per_request":1000,"duration_s":10,"events":`+events+`,"events_per_s":`+evs+`,"errors":0,"latency_ms":{"p50":1,"p99":`+p99+`}}`+"\n")
		write(name+".cpu", "cpu_ticks="+ticks+"\nclk_tck=100\nnodes=1 2 3\n")
	}
	// Plain: 100,000 events/s; 1,000,000 events for 1000 ticks (10 s): 10 µs per event.
	run("tls_plain_b1000_1", "100000", "1000000", "100", "1000")
	run("tls_plain_b1000_2", "120000", "1200000", "120", "1200")
	run("tls_plain_b1000_3", "110000", "1100000", "110", "1100")
	// TLS: 80,000 events/s; 12.5 µs per event.
	run("tls_tls_b1000_1", "80000", "800000", "150", "1000")
	run("tls_tls_b1000_2", "96000", "960000", "160", "1200")
	run("tls_tls_b1000_3", "88000", "880000", "170", "1100")
	for i, evs := range []string{"8000", "9000"} {
		n := string(rune('1' + i))
		run("tls_plain_single_"+n, evs, evs+"0", "20", "240")
		run("tls_tls_single_"+n, "4000", "40000", "30", "240")
	}
	// Round 3 of single events left nothing on either cluster.

	r := &report{dir: dir}
	got := r.tlsSection()
	for _, want := range []string{
		"| 1000-event batches, 8 clients | plain | 100,000 · 120,000 · 110,000 | 110,000 | 100 – 120 | 10.0 · 10.0 · 10.0 | 10.0 |",
		"| | TLS + users | 80,000 · 96,000 · 88,000 | 88,000 | 150 – 170 | 12.5 · 12.5 · 12.5 | 12.5 |",
		"| | **TLS / plain** | 0.80 · 0.80 · 0.80 | **0.80** | | 1.25 · 1.25 · 1.25 | **1.25** |",
		"| single events, 64 clients | plain | 8000 · 9000 · n/a | 8500 | 20.0 | 30.0 · 26.7 · n/a | 28.3 |",
		"| | TLS + users | 4000 · 4000 · n/a | 4000 | 30.0 | 60.0 · 60.0 · n/a | 60.0 |",
		"| | **TLS / plain** | 0.50 · 0.44 · n/a | **0.47** | | 2.00 · 2.25 · n/a | **2.12** |",
		"3 runs of",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("section lacks %q:\n%s", want, got)
		}
	}
	if len(r.problems) != 2 || !strings.Contains(r.problems[0], "tls_plain_single_3.json") {
		t.Errorf("problems %q, want the two missing runs", r.problems)
	}

	empty := &report{dir: t.TempDir()}
	if s := empty.tlsSection(); s != "" || len(empty.problems) != 1 {
		t.Errorf("without tls.txt: section %q, problems %q", s, empty.problems)
	}
}
