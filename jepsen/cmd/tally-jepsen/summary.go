package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// The README section between these markers is rewritten by -readme.
const (
	readmeBegin = "<!-- make jepsen: begin -->"
	readmeEnd   = "<!-- make jepsen: end -->"
)

// updateReadme replaces what lies between the markers in path with the table, the date,
// the machine and the command.
func updateReadme(path, table, matrix string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i, j := bytes.Index(b, []byte(readmeBegin)), bytes.Index(b, []byte(readmeEnd))
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s ... %s section to update", path, readmeBegin, readmeEnd)
	}
	host, _ := os.Hostname()
	section := fmt.Sprintf("%s\n`tally-jepsen -matrix %s`, %s, on %s (%s/%s, %d CPUs, %s):\n\n%s%s",
		readmeBegin, matrix, time.Now().UTC().Format("2006-01-02"), host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), table, readmeEnd)
	out := append(append(append([]byte{}, b[:i]...), section...), b[j+len(readmeEnd):]...)
	return os.WriteFile(path, out, 0o644)
}

// summary renders the runs as a Markdown table: one row per run, one column per checker
// (ok, FAIL, or "caught" for the checker a planted bug must break), the failover and ack
// latency figures, and the run's result.
func summary(results []outcome) string {
	var checkers []string
	seen := map[string]bool{}
	for _, o := range results {
		for _, v := range o.res.Verdicts {
			if !seen[v.Name] {
				seen[v.Name] = true
				checkers = append(checkers, v.Name)
			}
		}
	}
	var b strings.Builder
	b.WriteString("| run | ops ok/unknown | faults | " + strings.Join(checkers, " | ") + " | failover p50/p99 | ack p99 | result |\n")
	b.WriteString("|---|---|---|" + strings.Repeat("---|", len(checkers)) + "---|---|---|\n")
	for _, o := range results {
		stats := map[string]string{}
		cells := map[string]string{}
		for _, v := range o.res.Verdicts {
			for k, s := range v.Stats {
				stats[v.Name+"."+k] = s
			}
			switch {
			case v.OK:
				cells[v.Name] = "ok"
			case v.Name == o.spec.expect:
				cells[v.Name] = "caught"
			default:
				cells[v.Name] = "FAIL"
			}
		}
		okOps, unknown, faults := "-", "-", 0
		if h := o.res.History; h != nil {
			faults = len(h.Faults)
			var n, u int
			for _, op := range h.Ops {
				if op.Kind != "ingest" {
					continue
				}
				switch op.Status {
				case "ok":
					n++
				case "unknown":
					u++
				}
			}
			okOps, unknown = fmt.Sprint(n), fmt.Sprint(u)
		}
		fmt.Fprintf(&b, "| %s | %s/%s | %d |", o.spec.name(), okOps, unknown, faults)
		for _, c := range checkers {
			v := cells[c]
			if v == "" {
				v = "-"
			}
			fmt.Fprintf(&b, " %s |", v)
		}
		result := "pass"
		switch {
		case !o.ok():
			result = "**FAIL**"
		case o.spec.expect != "":
			result = "bug caught"
		}
		fmt.Fprintf(&b, " %s / %s | %s | %s |\n", or(stats["timings.failover p50"]), or(stats["timings.failover p99"]), or(stats["timings.ingest ack latency p99"]), result)
	}
	return b.String()
}

func or(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
