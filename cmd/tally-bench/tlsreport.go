package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// tlsSeries is one workload on one cluster of the TLS step, by round (NaN where a run is
// missing, so rounds stay aligned).
type tlsSeries struct {
	evs   []float64 // events/s
	p99   []float64 // ms
	cpuUS []float64 // CPU time of the three nodes per acknowledged event, µs
}

// tlsSeries reads the rounds of workload wl on cluster mode (plain or tls).
func (r *report) tlsSeries(mode, wl string, rounds int) tlsSeries {
	var s tlsSeries
	nan := math.NaN()
	for i := 1; i <= rounds; i++ {
		name := fmt.Sprintf("tls_%s_%s_%d", mode, wl, i)
		var run tallyRun
		if !r.readJSON(name+".json", &run) {
			s.evs, s.p99, s.cpuUS = append(s.evs, nan), append(s.p99, nan), append(s.cpuUS, nan)
			continue
		}
		s.evs = append(s.evs, run.EventsPerS)
		s.p99 = append(s.p99, run.LatencyMS.P99)
		cpu := r.kv(name + ".cpu")
		ticks, err1 := strconv.ParseFloat(cpu["cpu_ticks"], 64)
		hz, err2 := strconv.ParseFloat(cpu["clk_tck"], 64)
		us := nan
		if err1 == nil && err2 == nil && hz > 0 && run.Events > 0 {
			us = ticks / hz / float64(run.Events) * 1e6
		}
		s.cpuUS = append(s.cpuUS, us)
	}
	return s
}

// present returns the values that are not NaN.
func present(v []float64) []float64 {
	var out []float64
	for _, x := range v {
		if !math.IsNaN(x) {
			out = append(out, x)
		}
	}
	return out
}

// runs formats values in round order, "a · b · c".
func runs(v []float64, format func(float64) string) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = format(x)
		if math.IsNaN(x) {
			parts[i] = "n/a"
		}
	}
	return strings.Join(parts, " · ")
}

// spread formats the smallest and largest value, "lo – hi".
func spread(v []float64, format func(float64) string) string {
	p := present(v)
	if len(p) == 0 {
		return "n/a"
	}
	lo, hi := p[0], p[0]
	for _, x := range p {
		lo, hi = min(lo, x), max(hi, x)
	}
	if lo == hi {
		return format(lo)
	}
	return format(lo) + " – " + format(hi)
}

// perRound divides a by b round by round.
func perRound(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = ratio(a[i], b[i])
	}
	return out
}

func fixed(digits int) func(float64) string {
	return func(v float64) string {
		if math.IsNaN(v) {
			return "n/a"
		}
		return strconv.FormatFloat(v, 'f', digits, 64)
	}
}

// tlsSection is the TLS step's part of the report: per workload, the plain and the TLS+users
// cluster round by round with their medians, and TLS over plain. Empty (and noted) when the
// run has no finished TLS step.
func (r *report) tlsSection() string {
	meta := r.kv("tls.txt")
	rounds, err := strconv.Atoi(meta["runs"])
	if err != nil || rounds < 1 {
		return ""
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("The 1-group workloads of step 3 on two fresh 3-node clusters up at the same time: one plain, one with TLS and users\n")
	w("(`tally serve --tls-cert --tls-key --tls-ca --auth`: the HTTP API over HTTPS, mutual TLS on the Raft port and\n")
	w("between the nodes, certificates made with openssl as README's Security section shows (ECDSA P-256); every request\n")
	w("carries Basic auth for a user with read and write, a plain-text `password` in the users file). `tally bench`\n")
	w("gets `--ca` and TALLY_USER and keeps its connections open, so the handshakes are paid once per connection. %d runs of\n", rounds)
	w("each workload on each cluster, alternating (plain first in odd rounds, TLS first in even ones) after a 3 s warm-up\n")
	w("of each; the figures are in round order. CPU per event: utime+stime of the three `tally serve` processes over the\n")
	w("run (`/proc/PID/stat`) divided by the acknowledged events; the load generator's own CPU is not in it.\n\n")
	w("| workload | cluster | events/s (by round) | median | p99 ms | 3 nodes' CPU per event, µs (by round) | median |\n")
	w("|---|---|---|---|---|---|---|\n")
	for _, wl := range []struct{ key, name string }{
		{"b1000", "1000-event batches, 8 clients"},
		{"single", "single events, 64 clients"},
	} {
		plain, tls := r.tlsSeries("plain", wl.key, rounds), r.tlsSeries("tls", wl.key, rounds)
		w("| %s | plain | %s | %s | %s | %s | %s |\n", wl.name,
			runs(plain.evs, num), num(median(present(plain.evs))), spread(plain.p99, num),
			runs(plain.cpuUS, fixed(1)), fixed(1)(median(present(plain.cpuUS))))
		w("| | TLS + users | %s | %s | %s | %s | %s |\n",
			runs(tls.evs, num), num(median(present(tls.evs))), spread(tls.p99, num),
			runs(tls.cpuUS, fixed(1)), fixed(1)(median(present(tls.cpuUS))))
		w("| | **TLS / plain** | %s | **%s** | | %s | **%s** |\n",
			runs(perRound(tls.evs, plain.evs), fixed(2)), fixed(2)(ratio(median(present(tls.evs)), median(present(plain.evs)))),
			runs(perRound(tls.cpuUS, plain.cpuUS), fixed(2)), fixed(2)(ratio(median(present(tls.cpuUS)), median(present(plain.cpuUS)))))
	}
	w("\nTLS / plain: each round's TLS run over the plain run next to it, and the ratio of the medians.\n")
	return b.String()
}

// tlsOnly is the report of a run of the TLS step alone (BENCH_ONLY=tls).
func (r *report) tlsOnly() string {
	return r.onlyReport("tls", "both clusters and the load generator", r.tlsSection())
}

// onlyReport is the report of a run of one step alone (BENCH_ONLY=only): when, where, the
// commands and the step's section; sharing names what shares the machine's cores.
func (r *report) onlyReport(only, sharing, section string) string {
	mach, meta := r.kv("machine.txt"), r.kv("meta.txt")
	var b strings.Builder
	fmt.Fprintf(&b, "Run by `BENCH_ONLY=%s scripts/bench.sh` on %s in %s, %s s per run.\n\n", only, meta["date"], meta["wall"], meta["dur"])
	fmt.Fprintf(&b, "Machine: %s CPUs (`nproc`), %s, %s RAM, Linux %s, %s. Loopback only; %s\n", mach["nproc"], mach["cpu"], mach["mem"], mach["kernel"], mach["go"], sharing)
	fmt.Fprintf(&b, "share these cores.\n\n")
	fmt.Fprintf(&b, "Commands (as run by scripts/bench.sh):\n\n```\n%s```\n\n", r.readText("commands.txt"))
	b.WriteString(section)
	if len(r.problems) > 0 {
		b.WriteString("\nMissing or failed in this run:\n\n")
		for _, p := range r.problems {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(p, "\n", " "))
		}
	}
	return b.String()
}
