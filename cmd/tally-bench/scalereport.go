package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// scaleReplicas is the replicas per group of the scaling step (scripts/bench.sh scale_step).
const scaleReplicas = 3

// scaleAim is the most a node's CPU per acknowledged event may be at 9 nodes, as a fraction
// of that at 3 nodes.
const scaleAim = 0.45

// appliedMetric is the counter of events a replica's state machine applied, one series per
// group the node hosts.
const appliedMetric = "tally_fsm_applied_events_total"

// appliedEvents sums the appliedMetric series of a node's /metrics (Prometheus text format).
// It reports false when the text has none.
func appliedEvents(text string) (float64, bool) {
	var sum float64
	found := false
	for line := range strings.SplitSeq(text, "\n") {
		rest, ok := strings.CutPrefix(line, appliedMetric)
		if !ok {
			continue
		}
		if labels, ok := strings.CutPrefix(rest, "{"); ok {
			_, rest, ok = strings.Cut(labels, "}")
			if !ok {
				continue
			}
		} else if !strings.HasPrefix(rest, " ") {
			continue // another metric whose name starts with appliedMetric
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// scaleSize is what the scaling step measured on one cluster size. Per-node values are NaN
// where a file is missing or unreadable.
type scaleSize struct {
	nodes   int
	evs     float64   // events/s acknowledged
	p99     float64   // ms
	applied []float64 // per node: events its replicas applied during the run / acknowledged events
	cpuUS   []float64 // per node: CPU time during the run per acknowledged event, µs
	idleMS  []float64 // per node: CPU time per second before the load, ms
	// workUS is, per node, cpuUS less what the node's idle rate would have spent over the
	// run: an estimate of the CPU the events cost it.
	workUS []float64
}

// scaleSize reads the run on the cluster of n nodes: scaleN.json (tally bench), scaleN.cpu
// (clk_tck and ticks_nI) and scaleN_nI_before.prom / _after.prom (each node's /metrics).
func (r *report) scaleSize(n int) scaleSize {
	nan := math.NaN()
	s := scaleSize{nodes: n, evs: nan, p99: nan}
	for range n {
		s.applied, s.cpuUS, s.idleMS, s.workUS = append(s.applied, nan), append(s.cpuUS, nan), append(s.idleMS, nan), append(s.workUS, nan)
	}
	name := fmt.Sprintf("scale%d", n)
	var run tallyRun
	if !r.readJSON(name+".json", &run) {
		return s
	}
	s.evs, s.p99 = run.EventsPerS, run.LatencyMS.P99
	if run.Events <= 0 {
		r.note("%s.json: no events acknowledged", name)
		return s
	}
	acked := float64(run.Events)
	cpu := r.kv(name + ".cpu")
	hz, err := strconv.ParseFloat(cpu["clk_tck"], 64)
	if err != nil || hz <= 0 {
		r.note("%s.cpu: no clk_tck", name)
	}
	idleS, _ := strconv.ParseFloat(cpu["idle_s"], 64)
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		if ticks, err := strconv.ParseFloat(cpu["idle_ticks_"+id], 64); err == nil && hz > 0 && idleS > 0 {
			s.idleMS[i] = ticks / hz / idleS * 1000
		}
		if ticks, err := strconv.ParseFloat(cpu["ticks_"+id], 64); err == nil && hz > 0 {
			s.cpuUS[i] = ticks / hz / acked * 1e6
		} else if hz > 0 {
			r.note("%s.cpu: no ticks_%s", name, id)
		}
		s.workUS[i] = s.cpuUS[i] - s.idleMS[i]*run.DurationS*1000/acked
		before, ok1 := r.appliedIn(fmt.Sprintf("%s_%s_before.prom", name, id))
		after, ok2 := r.appliedIn(fmt.Sprintf("%s_%s_after.prom", name, id))
		if ok1 && ok2 {
			s.applied[i] = (after - before) / acked
		}
	}
	return s
}

// appliedIn reads the events a node had applied from a copy of its /metrics, noting a
// missing file or one without the metric.
func (r *report) appliedIn(file string) (float64, bool) {
	b, err := os.ReadFile(filepath.Join(r.dir, file))
	if err != nil {
		r.note("%s: %v", file, err)
		return 0, false
	}
	v, ok := appliedEvents(string(b))
	if !ok {
		r.note("%s: no %s", file, appliedMetric)
	}
	return v, ok
}

// mean is the mean of v, or NaN when v is empty or a value is missing (a mean over some of
// the nodes would not be a mean per node).
func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	var sum float64
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}

// scaleSizes reads scale.txt's sizes (the node counts the step was to measure, in order).
func (r *report) scaleSizes() []int {
	var sizes []int
	for f := range strings.FieldsSeq(r.kv("scale.txt")["sizes"]) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			r.note("scale.txt: size %q is not a number of nodes", f)
			return nil
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// scaleSection is the scaling step's part of the report: per cluster size, the acknowledged
// events/s, the events applied per node over those acknowledged, and a node's CPU per
// acknowledged event with its ratio to the first size, then the aim for 9 nodes against 3.
// Empty (and noted) when the run has no scaling step.
func (r *report) scaleSection() string {
	sizes := r.scaleSizes()
	if len(sizes) == 0 {
		return ""
	}
	meta, step := r.kv("meta.txt"), r.kv("scale.txt")
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	list := make([]string, len(sizes))
	for i, n := range sizes {
		list[i] = strconv.Itoa(n)
	}
	w("The same load on fresh clusters of %s nodes, one after the other: `tally bench` with 8 clients sending\n", strings.Join(list, ", "))
	w("1000-event batches over 1000 symbols, each client to every node in turn, for %s s after %s s idle and a %s s\n", meta["dur"], step["idle_s"], step["warmup_s"])
	w("warm-up. Each cluster has as many partition groups as nodes and %d replicas per group (`NODES=N GROUPS=N\n", scaleReplicas)
	w("REPLICAS=%d scripts/run-cluster.sh`, ready once the replicas are spread evenly): every node holds %d replicas, and\n", scaleReplicas, scaleReplicas)
	w("the symbols spread the events over every group. Per node: its CPU time per second while idle (the Raft heartbeats\n")
	w("of its replicas and of the controller group, the control loop); the events its replicas applied during the run\n")
	w("(`%s` summed over its groups, from its /metrics before and after) over the events\n", appliedMetric)
	w("acknowledged, ideally %d/N; and its CPU time during the run (utime+stime in `/proc/PID/stat`) over the events\n", scaleReplicas)
	w("acknowledged. The columns give the mean over the nodes and the lowest and highest node. \"Above the idle rate\"\n")
	w("subtracts from a node's CPU per event what its idle rate would have spent over the run (idle ms/s × run time /\n")
	w("acknowledged events): an estimate of what the events themselves cost it, assuming the idle work goes on unchanged\n")
	w("under load.\n\n")

	base, baseWork := math.NaN(), math.NaN()
	baseNodes := sizes[0]
	byNodes := map[int]float64{}
	times := func(v float64) string {
		if math.IsNaN(v) {
			return "n/a"
		}
		return fixed(2)(v) + "x"
	}
	w("| nodes | groups | idle CPU per node, ms/s: mean (lowest – highest) | events/s acknowledged | p99 ms | applied per node / acknowledged: mean (lowest – highest; ideal %d/N) | CPU µs per acknowledged event per node: mean (lowest – highest) | ratio to %d nodes | of it above the idle rate: mean (ratio to %d nodes) | whole cluster's CPU µs per event |\n", scaleReplicas, baseNodes, baseNodes)
	w("|---|---|---|---|---|---|---|---|---|---|\n")
	for i, n := range sizes {
		s := r.scaleSize(n)
		cpu, work := mean(s.cpuUS), mean(s.workUS)
		if i == 0 {
			base, baseWork = cpu, work
		}
		byNodes[n] = ratio(cpu, base)
		w("| %d | %d | %s (%s) | %s | %s | %s (%s; ideal %s) | %s (%s) | %s | %s (%s) | %s |\n", n, n,
			fixed(1)(mean(s.idleMS)), spread(s.idleMS, fixed(1)), num(s.evs), num(s.p99),
			fixed(2)(mean(s.applied)), spread(s.applied, fixed(2)), fixed(2)(float64(min(scaleReplicas, n))/float64(n)),
			fixed(1)(cpu), spread(s.cpuUS, fixed(1)), times(byNodes[n]), fixed(1)(work), times(ratio(work, baseWork)),
			fixed(1)(cpu*float64(n)))
	}
	at9, ok := byNodes[9]
	if baseNodes != 3 || !ok {
		at9 = math.NaN()
	}
	w("\nAim: a node's CPU per acknowledged event at 9 nodes at most %.2fx that at 3 nodes: %s.\n\n", scaleAim, atMostRatio(at9, scaleAim))
	w("What bounds it on this machine: every node of a cluster (and the load generator) runs on the same %s cores, so a\n", r.kv("machine.txt")["nproc"])
	w("larger cluster has no more CPU than a smaller one and its events/s cannot grow with the nodes; the whole\n")
	w("cluster's CPU per event (a node's times N) is what scaling out costs in total. A node's CPU per event still shows\n")
	w("how the work splits: each event is applied on %d of the N nodes, so a node's share of apply falls as %d/N, and\n", scaleReplicas, scaleReplicas)
	w("a node receives 1/N of the requests; work that does not shrink as 1/N adds to it. Each request is split into N\n")
	w("parts, most of them forwarded to other groups' leaders, and the events are committed over N groups' Raft logs;\n")
	w("and a node's idle CPU (first column) does not shrink with N at all: over the run it adds idle CPU × run time /\n")
	w("acknowledged events to a node's CPU per event whatever N, which weighs more the fewer events/s the machine gets\n")
	w("through; the \"above the idle rate\" column is the split without it.\n")
	return b.String()
}

// atMostRatio says whether ratio v is at most target.
func atMostRatio(v, target float64) string {
	switch {
	case math.IsNaN(v):
		return "not measured (needs the 3- and the 9-node run)"
	case v <= target:
		return fmt.Sprintf("**met** (%.2fx)", v)
	default:
		return fmt.Sprintf("**missed**: %.2fx, %.2f over", v, v-target)
	}
}

// scaleOnly is the report of a run of the scaling step alone (BENCH_ONLY=scale).
func (r *report) scaleOnly() string {
	return r.onlyReport("scale", "every node of a cluster and the load generator", r.scaleSection())
}
