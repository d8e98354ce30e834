package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	beginMarker = "<!-- make bench: begin -->"
	endMarker   = "<!-- make bench: end -->"
)

// tallyRun is the part of `tally bench --json` the report uses.
type tallyRun struct {
	Clients          int     `json:"clients"`
	EventsPerRequest int     `json:"events_per_request"`
	DurationS        float64 `json:"duration_s"`
	Events           int64   `json:"events"`
	EventsPerS       float64 `json:"events_per_s"`
	Errors           int64   `json:"errors"`
	LatencyMS        struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
	} `json:"latency_ms"`
}

// report collects what the run left in the results directory. A missing or unreadable
// result is noted and shown as "n/a", so that one failed step does not hide the others.
type report struct {
	dir      string
	problems []string
}

func (r *report) note(format string, args ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

func (r *report) readJSON(name string, v any) bool {
	b, err := os.ReadFile(filepath.Join(r.dir, name))
	if err == nil {
		// The last non-empty line is the JSON summary.
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		err = json.Unmarshal([]byte(lines[len(lines)-1]), v)
	}
	if err != nil {
		r.note("%s: %v", name, err)
		return false
	}
	return true
}

func (r *report) readText(name string) string {
	b, err := os.ReadFile(filepath.Join(r.dir, name))
	if err != nil {
		r.note("%s: %v", name, err)
	}
	return string(b)
}

// kv reads KEY=VALUE lines.
func (r *report) kv(name string) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(r.readText(name)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// benchMetric returns the values of unit on the lines of a go test -bench output whose name
// starts with prefix.
func benchMetric(out, prefix, unit string) []float64 {
	re := regexp.MustCompile(`([0-9.e+]+) ` + regexp.QuoteMeta(unit) + `(\s|$)`)
	var vals []float64
	for line := range strings.SplitSeq(out, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		if m := re.FindStringSubmatch(line); m != nil {
			if v, err := strconv.ParseFloat(m[1], 64); err == nil {
				vals = append(vals, v)
			}
		}
	}
	return vals
}

// median is the middle value, or the mean of the two middle ones for an even count.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// quantile is the nearest-rank quantile of sorted durations.
func quantile(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case v >= 1e6:
		return fmt.Sprintf("%.2f M", v/1e6)
	case v >= 1e4:
		return commas(int64(math.Round(v)))
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

// atLeast says whether v meets a minimum, and by how much it misses it.
func atLeast(v, target float64, unit string) string {
	if math.IsNaN(v) {
		return "not measured"
	}
	if v >= target {
		return "met"
	}
	return fmt.Sprintf("**missed**: %s %s short (%.0f%% of target)", num(target-v), unit, 100*v/target)
}

// atMost says whether v stays under a maximum, and by how much it exceeds it.
func atMost(v, target float64, unit string) string {
	if math.IsNaN(v) {
		return "not measured"
	}
	if v < target {
		return "met"
	}
	return fmt.Sprintf("**missed**: %s %s over (%.1fx the limit)", num(v-target), unit, v/target)
}

func reportMain(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	dir := fs.String("dir", "", "results directory written by scripts/bench.sh")
	md := fs.String("md", "BENCHMARKS.md", "file whose generated section is replaced")
	only := fs.String("only", "", `"tls", "mem" or "scale": print the report of the TLS step (BENCH_ONLY=tls), the memory step (BENCH_ONLY=mem) or the scaling step (BENCH_ONLY=scale) alone to stdout; --md is left as it is`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("--dir is required")
	}
	r := &report{dir: *dir}
	switch *only {
	case "":
	case "tls":
		fmt.Print(r.tlsOnly())
		return nil
	case "scale":
		fmt.Print(r.scaleOnly())
		return nil
	case "mem":
		row, note := r.memory()
		fmt.Printf("| # | measure | figure | target | result |\n|---|---|---|---|---|\n| 7 | %s |\n\n- %s\n", row, note)
		for _, p := range r.problems {
			fmt.Printf("- problem: %s\n", p)
		}
		return nil
	default:
		return fmt.Errorf(`--only %q: only "tls", "mem" and "scale" are known`, *only)
	}
	mach := r.kv("machine.txt")
	meta := r.kv("meta.txt")
	if f := meta["failed"]; f != "" {
		r.note("steps that failed (see the run's output): %s", f)
	}

	engineOut := r.readText("engine.txt")
	eng100 := median(benchMetric(engineOut, "BenchmarkApplyTradeAggregation/keys=100-", "events/s"))
	eng10k := median(benchMetric(engineOut, "BenchmarkApplyTradeAggregation/keys=10000-", "events/s"))
	codecOut := r.readText("codec.txt")
	codecEnc := median(benchMetric(codecOut, "BenchmarkCommandCodec/encode-", "MB/s"))
	codecMarshal := median(benchMetric(codecOut, "BenchmarkCommandCodec/marshal-", "MB/s"))
	codecDec := median(benchMetric(codecOut, "BenchmarkCommandCodec/decode-", "MB/s"))

	var raft100, raft1000 raftResult
	nan := math.NaN()
	raftEv := func(ok bool, x raftResult) (entries, events float64) {
		if !ok {
			return nan, nan
		}
		return x.EntriesPerS, x.EventsPerS
	}
	r100Entries, r100Events := raftEv(r.readJSON("raft100.json", &raft100), raft100)
	r1000Entries, r1000Events := raftEv(r.readJSON("raft1000.json", &raft1000), raft1000)
	var raft100Bolt, raft1000Bolt raftResult
	r100BoltEntries, r100BoltEvents := raftEv(r.readJSON("raft100_bolt.json", &raft100Bolt), raft100Bolt)
	r1000BoltEntries, r1000BoltEvents := raftEv(r.readJSON("raft1000_bolt.json", &raft1000Bolt), raft1000Bolt)

	tally := func(name string) (ev, p99 float64, run tallyRun) {
		if !r.readJSON(name, &run) {
			return nan, nan, run
		}
		return run.EventsPerS, run.LatencyMS.P99, run
	}
	g1b100, g1b100p99, _ := tally("g1_b100.json")
	g1b1000, g1b1000p99, _ := tally("g1_b1000.json")
	g1s, g1sp99, _ := tally("g1_single.json")
	g3b100, g3b100p99, _ := tally("g3_b100.json")
	g3b1000, g3b1000p99, _ := tally("g3_b1000.json")
	g3s, g3sp99, _ := tally("g3_single.json")

	var maria, mariaSingle mariaResult
	mariaEv, mariaSingleEv := nan, nan
	if r.readJSON("mariadb.json", &maria) {
		mariaEv = maria.EventsPerS
	}
	if r.readJSON("mariadb_single.json", &mariaSingle) {
		mariaSingleEv = mariaSingle.EventsPerS
	}
	_, _, g1b1000run := tally("g1_b1000.json")
	cpuPerEvent := r.cpuPerEventUS("g1_b1000.cpu", g1b1000run.Events)
	boltB1000, boltB1000p99, boltB1000run := tally("g1bolt_b1000.json")
	boltCPU := r.cpuPerEventUS("g1bolt_b1000.cpu", boltB1000run.Events)
	boltS, boltSp99, _ := tally("g1bolt_single.json")

	var fo []time.Duration
	foRe := regexp.MustCompile(`failover times \(sorted\): \[([^\]]*)\]`)
	if m := foRe.FindStringSubmatch(r.readText("failover.log")); m != nil {
		for f := range strings.FieldsSeq(m[1]) {
			if d, err := time.ParseDuration(f); err == nil {
				fo = append(fo, d)
			}
		}
		slices.Sort(fo)
	} else {
		r.note("failover.log: no 'failover times (sorted)' line (did the test fail?)")
	}
	foP50, foP99 := nan, nan
	if len(fo) > 0 {
		foP50, foP99 = quantile(fo, 0.5).Seconds()*1000, quantile(fo, 0.99).Seconds()*1000
	}

	memRow, memNote := r.memory()

	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("%s\n## `make bench` (generated)\n\n", beginMarker)
	w("Generated by `make bench` (scripts/bench.sh, cmd/tally-bench) on %s in %s; everything below comes from this one run,\n", meta["date"], meta["wall"])
	w("so the ratios compare figures taken minutes apart on the same machine. Do not edit by hand: re-run `make bench`.\n\n")
	w("Machine: %s CPUs (`nproc`), %s, %s RAM, Linux %s, %s. Loopback only; the three nodes, the load\n", mach["nproc"], mach["cpu"], mach["mem"], mach["kernel"], mach["go"])
	w("generator (and MariaDB) share these cores.\n\n")
	w("Commands (as run by scripts/bench.sh):\n\n```\n%s```\n\n", r.readText("commands.txt"))

	w("| # | measure | figure | target | result |\n|---|---|---|---|---|\n")
	w("| 1 | engine apply, 10k keys (one core) | %s events/s | ≥ 2 M events/s per core | %s |\n", num(eng10k), atLeast(eng10k, 2e6, "events/s"))
	w("| 1 | engine apply, 100 keys (one core) | %s events/s | | |\n", num(eng100))
	w("| 1 | command codec, 1000-event entry: encode / marshal / decode | %s / %s / %s MB/s | | |\n", num(codecEnc), num(codecMarshal), num(codecDec))
	w("| 2 | raw Raft on raft-wal, %d-byte entries (100 events), %d proposers | %s entries/s = %s events/s | | |\n", raft100.EntryBytes, raft100.Proposers, num(r100Entries), num(r100Events))
	w("| 2 | raw Raft on raft-wal, %d-byte entries (1000 events), %d proposers | %s entries/s = %s events/s | | |\n", raft1000.EntryBytes, raft1000.Proposers, num(r1000Entries), num(r1000Events))
	w("| 2 | raw Raft on raft-boltdb, 100-event entries | %s entries/s = %s events/s | | |\n", num(r100BoltEntries), num(r100BoltEvents))
	w("| 2 | raw Raft on raft-boltdb, 1000-event entries | %s entries/s = %s events/s | | |\n", num(r1000BoltEntries), num(r1000BoltEvents))
	w("| 3 | Tally 1 group, 100-event batches, 8 clients | %s events/s (p99 %s ms) | | |\n", num(g1b100), num(g1b100p99))
	w("| 3 | Tally 1 group, 1000-event batches, 8 clients | %s events/s (p99 %s ms) | ≥ 250,000 events/s | %s |\n", num(g1b1000), num(g1b1000p99), atLeast(g1b1000, 250000, "events/s"))
	w("| 3 | ratio to raw Raft on the same log store (raft-wal), 100-event batches | %.0f %% | ≥ 70 %% | %s |\n", 100*ratio(g1b100, r100Events), atLeast(100*ratio(g1b100, r100Events), 70, "points"))
	w("| 3 | ratio to raw Raft on the same log store (raft-wal), 1000-event batches | %.0f %% | ≥ 40 %% (aim 70 %%) | %s |\n", 100*ratio(g1b1000, r1000Events), atLeast(100*ratio(g1b1000, r1000Events), 40, "points"))
	w("| 3 | ratio to raw Raft on raft-boltdb, 1000-event batches | %.0f %% | | |\n", 100*ratio(g1b1000, r1000BoltEvents))
	w("| 3 | ratio to MariaDB (1000-event batches) | %.1fx | ≥ 10x | %s |\n", ratio(g1b1000, mariaEv), atLeast(ratio(g1b1000, mariaEv), 10, "x"))
	w("| 3 | the 3 nodes' CPU per acknowledged event, 1000-event batches | %s µs | ≤ 5 µs | %s |\n", num(cpuPerEvent), atMost(cpuPerEvent, 5, "µs"))
	w("| 3 | Tally 1 group, single events, 64 clients | %s events/s | ≥ 25,000 events/s | %s |\n", num(g1s), atLeast(g1s, 25000, "events/s"))
	w("| 3 | ratio to MariaDB (single events, 64 clients each) | %.1fx | ≥ 3x | %s |\n", ratio(g1s, mariaSingleEv), atLeast(ratio(g1s, mariaSingleEv), 3, "x"))
	w("| 3 | … their p99 latency | %s ms | < 20 ms | %s |\n", num(g1sp99), atMost(g1sp99, 20, "ms"))
	w("| 3b | Tally 1 group on raft-boltdb, 1000-event batches, 8 clients | %s events/s (p99 %s ms), 3 nodes' CPU %s µs per event; raft-wal: %.2fx the events/s | | |\n", num(boltB1000), num(boltB1000p99), num(boltCPU), ratio(g1b1000, boltB1000))
	w("| 3b | Tally 1 group on raft-boltdb, single events, 64 clients | %s events/s (p99 %s ms); raft-wal: %.2fx | | |\n", num(boltS), num(boltSp99), ratio(g1s, boltS))
	w("| 4 | Tally 3 groups, 100-event batches, 8 clients | %s events/s (p99 %s ms); %.2fx 1 group | | |\n", num(g3b100), num(g3b100p99), ratio(g3b100, g1b100))
	w("| 4 | Tally 3 groups, 1000-event batches, 8 clients | %s events/s (p99 %s ms) | | |\n", num(g3b1000), num(g3b1000p99))
	w("| 4 | 3 groups vs 1 group on the same nodes, 1000-event batches | %.2fx | ≥ 0.95x | %s |\n", ratio(g3b1000, g1b1000), atLeast(ratio(g3b1000, g1b1000), 0.95, "x"))
	w("| 4 | Tally 3 groups, single events, 64 clients | %s events/s (p99 %s ms); %.2fx 1 group | | |\n", num(g3s), num(g3sp99), ratio(g3s, g1s))
	w("| 5 | MariaDB, %d clients × 1000-event transactions, flush_log_at_trx_commit=%s | %s events/s (%s tx/s) | | |\n", maria.Clients, maria.FlushLogAtCommit, num(mariaEv), num(float64(maria.Transactions)/maria.DurationS))
	w("| 5 | MariaDB, %d clients × one-event transactions, flush_log_at_trx_commit=%s | %s events/s | | |\n", mariaSingle.Clients, mariaSingle.FlushLogAtCommit, num(mariaSingleEv))
	w("| 6 | failover p50 (%d trials) | %s ms | < 1000 ms | %s |\n", len(fo), num(foP50), atMost(foP50, 1000, "ms"))
	w("| 6 | failover p99 (%d trials) | %s ms | < 2000 ms | %s |\n", len(fo), num(foP99), atMost(foP99, 2000, "ms"))
	w("| 7 | %s |\n\n", memRow)

	w("Notes:\n\n")
	w("- Engine and codec: medians of the `go test -bench` runs above (`events/s` and `MB/s` metrics).\n")
	w("- Log stores: Tally's replicas keep their Raft log in hashicorp/raft-wal v0.4.2 (segment files, one fsync per append) unless started with `--raft-log-store bolt` (raft-boltdb/v2 on bbolt: two fdatasyncs per append). Step 3b is the 1-group cluster of step 3 on raft-boltdb, run right after it.\n")
	w("- Raw Raft: hashicorp/raft v1.7.3 on raft-wal v0.4.2 and on raft-boltdb/v2 (fsync on every append in both), no-op FSM, 3 replicas in one process over TCP on 127.0.0.1, Tally's timeouts (raftnode.DefaultConfig) and BatchApplyCh; each entry is an fsm.Command KindBatch of 100 or 1000 TradeStream events (%d and %d bytes); each proposer has one Apply in flight (mean Apply latency %.1f ms and %.1f ms).\n",
		raft100.EntryBytes, raft1000.EntryBytes, raft100.MeanLatencyMS, raft1000.MeanLatencyMS)
	w("- Tally: `bin/tally serve` ×3 started by scripts/run-cluster.sh with testdata/cluster/trades.siddhi (TradeStream is `@distribution(strategy='partitioned', partitionKey='symbol')`, so with 3 groups every batch is split over the groups), default SQLite store; `tally bench` spreads each client's requests over the three nodes, 1000 symbols, %s s per run. Tally's commit loop may put several requests into one Raft entry, which the raw-Raft figure (one batch per entry) does not do.\n", meta["dur"])
	w("- MariaDB: a throwaway server (internal/mariadbtest: InnoDB, 64 MiB buffer pool, innodb_flush_log_at_trx_commit=1); each transaction is 1000 random events over 1000 symbols, summed per symbol in the client first, then one multi-row `INSERT … ON DUPLICATE KEY UPDATE` per table trade_sec … trade_year keyed (symbol, agg_timestamp), adding sum(price), count and sum(quantity); %d deadlock retries. The year table's count is checked against the committed events. The single-event baseline is the same with 64 clients, each transaction one event (%d deadlock retries).\n", maria.DeadlockRetries, mariaSingle.DeadlockRetries)
	w("- CPU per event: utime+stime of the three `tally serve` processes (`/proc/PID/stat`) over the 1-group 1000-event run, divided by the events it acknowledged; the load generator's own CPU is not in it.\n")
	if len(fo) > 0 {
		var ms []string
		for _, d := range fo {
			ms = append(ms, strconv.FormatInt(d.Milliseconds(), 10))
		}
		w("- Failover: TestCluster_LeaderKill, sorted (ms): %s. p50 and p99 are nearest-rank (with 20 trials p99 is the maximum).\n", strings.Join(ms, ", "))
	}
	w("- %s\n", memNote)
	if sec := r.scaleSection(); sec != "" {
		w("\n### 8. Scaling out\n\n%s", sec)
	}
	if sec := r.tlsSection(); sec != "" {
		w("\n### 9. TLS and users\n\n%s", sec)
	}
	if len(r.problems) > 0 {
		w("\nMissing or failed in this run:\n\n")
		for _, p := range r.problems {
			w("- %s\n", strings.ReplaceAll(p, "\n", " "))
		}
	}
	w("%s\n", endMarker)

	old, err := os.ReadFile(*md)
	if err != nil {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i >= 0 && j > i {
		s = s[:i] + b.String() + strings.TrimPrefix(s[j+len(endMarker):], "\n")
	} else {
		s = strings.TrimRight(s, "\n") + "\n\n" + b.String()
	}
	if err := os.WriteFile(*md, []byte(s), 0o644); err != nil {
		return err
	}
	fmt.Print(b.String())
	return nil
}

// cpuPerEventUS reads a tally_load CPU file (cpu_ticks, clk_tck: the nodes' utime+stime
// over the run) and divides it by the events the run acknowledged, in microseconds.
func (r *report) cpuPerEventUS(name string, events int64) float64 {
	kv := r.kv(name)
	ticks, err1 := strconv.ParseFloat(kv["cpu_ticks"], 64)
	tck, err2 := strconv.ParseFloat(kv["clk_tck"], 64)
	if err1 != nil || err2 != nil || tck <= 0 || events <= 0 {
		r.note("%s: no CPU figure (cpu_ticks %q, clk_tck %q, %d events)", name, kv["cpu_ticks"], kv["clk_tck"], events)
		return math.NaN()
	}
	return ticks / tck / float64(events) * 1e6
}

// memLimitMiB is the memory step's target: RSS per replica at 1M keys.
const memLimitMiB = 1024

// memory is the memory step's table row (measure | figure | target | result) and note, from
// memory.txt. The figure is measured with every symbol acknowledged, never extrapolated: a
// run that did not get them all acknowledged in time misses the target.
func (r *report) memory() (row, note string) {
	mem := r.kv("memory.txt")
	nan := math.NaN()
	keys, err := strconv.ParseFloat(mem["keys"], 64)
	if err != nil {
		keys = nan
	}
	target := 1e6
	if v, err := strconv.ParseFloat(mem["target_keys"], 64); err == nil && v > 0 {
		target = v
	}
	rssMax := nan
	for _, id := range []string{"n1", "n2", "n3"} {
		if v, err := strconv.ParseFloat(mem["rss_kb_"+id], 64); err == nil {
			if math.IsNaN(rssMax) || v > rssMax {
				rssMax = v
			}
		}
	}
	rssMiB := rssMax / 1024
	measure := fmt.Sprintf("RSS per replica at %s keys", commas(int64(target)))
	figure := fmt.Sprintf("%s MiB (largest replica) with %s of %s distinct symbols acknowledged in %s s", num(rssMiB), commas(int64(keys)), commas(int64(target)), mem["load_s"])
	var result string
	switch {
	case math.IsNaN(keys) || math.IsNaN(rssMax):
		result = "not measured"
	case keys < target:
		result = fmt.Sprintf("**missed**: only %s of %s symbols acknowledged within the step's %s s (not extrapolated)", commas(int64(keys)), commas(int64(target)), mem["max_s"])
	case target < 1e6:
		result = fmt.Sprintf("not measured at 1,000,000 keys (MEM_KEYS=%s)", commas(int64(target)))
	default:
		result = atMost(rssMiB, memLimitMiB, "MiB")
	}
	row = fmt.Sprintf("%s | %s | < %d MiB | %s", measure, figure, memLimitMiB, result)
	limit := "no memory limit"
	if l := mem["mem_limit"]; l != "" && l != "none" {
		limit = fmt.Sprintf("`--memory-limit %s` (GOMEMLIMIT 90 %% of it, flush backlog at most one row per 4 KiB of it)", l)
	}
	note = fmt.Sprintf("Memory: %s distinct symbols sent once each (cmd/tally-bench load, 1000-event batches, 8 clients) to a fresh 1-group cluster whose nodes ran with %s; %s acknowledged in %s s (the step allows %s s; the node answers 503 while its flush backlog to the SQLite store is over its bound, and every new symbol adds six rows to flush), then VmRSS of each `tally serve` after %s s: n1 %s KiB, n2 %s KiB, n3 %s KiB (before the load the largest was %s KiB). Measured, not extrapolated.",
		commas(int64(target)), limit, commas(int64(keys)), mem["load_s"], mem["max_s"], mem["settle_s"], mem["rss_kb_n1"], mem["rss_kb_n2"], mem["rss_kb_n3"], mem["base_rss_kb_max"])
	return row, note
}
