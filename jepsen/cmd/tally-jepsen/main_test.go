package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tally-db/tally/jepsen/check"
	"github.com/tally-db/tally/jepsen/harness"
)

func outcomeWith(s spec, vs ...check.Verdict) outcome {
	return outcome{spec: s, res: &harness.Result{Verdicts: vs}}
}

func TestOutcomeOK(t *testing.T) {
	pass := check.Verdict{Name: "exactly-once", OK: true}
	fail := check.Verdict{Name: "exactly-once", Problems: []string{"lost"}}
	other := check.Verdict{Name: "alerts", Problems: []string{"missing"}}
	normal := spec{nemesis: "kill-leader", groups: 1, seed: 1}
	planted := spec{nemesis: "flaky", groups: 1, seed: 1, tags: []string{"tally_bug_nodedup"}, expect: "exactly-once"}
	cases := []struct {
		name string
		o    outcome
		want bool
	}{
		{"normal run passing", outcomeWith(normal, pass), true},
		{"normal run failing", outcomeWith(normal, fail), false},
		{"planted bug caught", outcomeWith(planted, fail), true},
		{"planted bug missed", outcomeWith(planted, pass, other), false},
		{"planted run with no verdicts", outcomeWith(planted), false},
	}
	for _, c := range cases {
		if got := c.o.ok(); got != c.want {
			t.Errorf("%s: ok() = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSummaryAndReadme(t *testing.T) {
	s := spec{nemesis: "flaky", groups: 3, seed: 9, tags: []string{"tally_bug_nodedup"}, expect: "exactly-once"}
	o := outcomeWith(s, check.Verdict{Name: "exactly-once", Problems: []string{"x"}},
		check.Verdict{Name: "timings", OK: true, Stats: map[string]string{"failover p50": "10.0ms", "failover p99": "20.0ms", "ingest ack latency p99": "5.0ms"}})
	o.res.History = &check.History{Ops: []check.Op{{Kind: check.Ingest, Status: check.OK}, {Kind: check.Ingest, Status: check.Unknown}}}
	table := summary([]outcome{o})
	for _, want := range []string{"| tally_bug_nodedup-flaky-g3-s9 | 1/1 | 0 | caught | ok | 10.0ms / 20.0ms | 5.0ms | bug caught |"} {
		if !strings.Contains(table, want) {
			t.Errorf("summary lacks %q:\n%s", want, table)
		}
	}
	path := filepath.Join(t.TempDir(), "README.md")
	if err := os.WriteFile(path, []byte("# T\n"+readmeBegin+"\nold\n"+readmeEnd+"\nafter\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateReadme(path, table, "full"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	got := string(b)
	if strings.Contains(got, "old") || !strings.Contains(got, table) || !strings.HasSuffix(got, readmeEnd+"\nafter\n") || !strings.Contains(got, "`tally-jepsen -matrix full`") {
		t.Errorf("README after update:\n%s", got)
	}
	if err := os.WriteFile(path, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateReadme(path, table, "full"); err == nil {
		t.Error("a README without markers was updated without error")
	}
}
