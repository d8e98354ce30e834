// Command tally-jepsen runs Tally's fault-injection suite: real `tally serve` processes and a
// real MariaDB on loopback, faults on a seeded schedule, and checkers over the recorded
// history (see jepsen/README.md).
//
//	tally-jepsen -matrix quick      # a fixed set of seeds, a few minutes (part of make test)
//	tally-jepsen -matrix full       # every nemesis alone and mixed, 1 and 3 groups
//	tally-jepsen -nemesis kill-leader -groups 3 -seed 7 -duration 30s
//	tally-jepsen -nemesis flaky -tags tally_bug_nodedup -expect exactly-once
//	tally-jepsen -check jepsen/report/RUN/history.json   # judge a saved history again
//
// It prints one line per run as it finishes and a summary table, writes each run's report
// directory under -report, and exits 1 when a run fails (or a planted bug goes unnoticed).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/tally-db/tally/internal/mariadbtest"
	"github.com/tally-db/tally/jepsen/check"
	"github.com/tally-db/tally/jepsen/harness"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tally-jepsen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	matrix := fs.String("matrix", "quick", "quick, full or planted (ignored when -nemesis is given)")
	nemesis := fs.String("nemesis", "", "run one nemesis: "+strings.Join(harness.Nemeses, ", ")+" or mixed")
	groups := fs.Int("groups", 1, "partition groups of a single run (1 or 3)")
	seed := fs.Int64("seed", 1, "seed of a single run")
	duration := fs.Duration("duration", 0, "how long faults are injected in each run (default: the matrix's)")
	tags := fs.String("tags", "", "build tags of the server for a single run (e.g. tally_bug_nodedup)")
	expect := fs.String("expect", "", "for a single run with a planted bug: the checker that must fail")
	secure := fs.Bool("secure", false, "a single run with TLS between every node and users on the API")
	report := fs.String("report", "jepsen/report", "directory for the run reports")
	markdown := fs.String("markdown", "", "also write the summary table as Markdown to this file")
	readme := fs.String("readme", "", "also put the summary table in this file between the make jepsen markers (README.md)")
	verbose := fs.Bool("v", false, "log the harness's progress to stderr")
	recheck := fs.String("check", "", "judge a saved history.json again instead of running anything")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *recheck != "" {
		return checkSaved(*recheck, stdout, stderr)
	}
	var runs []spec
	if *nemesis != "" {
		if !harness.ValidNemesis(*nemesis) {
			fmt.Fprintf(stderr, "tally-jepsen: unknown nemesis %q (have %s, mixed)\n", *nemesis, strings.Join(harness.Nemeses, ", "))
			return 2
		}
		if *groups != 1 && *groups != 3 {
			fmt.Fprintf(stderr, "tally-jepsen: -groups %d: the harness runs 1 or 3 groups\n", *groups)
			return 2
		}
		runs = []spec{{nemesis: *nemesis, groups: *groups, seed: *seed, tags: splitTags(*tags), expect: *expect, secure: *secure}}
	} else {
		var ok bool
		if runs, ok = matrices[*matrix]; !ok {
			fmt.Fprintf(stderr, "tally-jepsen: unknown matrix %q (have quick, full, planted)\n", *matrix)
			return 2
		}
	}
	for i := range runs {
		if *duration > 0 {
			runs[i].duration = *duration
		}
		if runs[i].duration == 0 {
			runs[i].duration = 20 * time.Second
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	results, err := runAll(ctx, runs, *report, logger, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "tally-jepsen: %v\n", err)
		return 1
	}
	table := summary(results)
	fmt.Fprint(stdout, "\n"+table)
	if *markdown != "" {
		if err := os.WriteFile(*markdown, []byte(table), 0o644); err != nil {
			fmt.Fprintf(stderr, "tally-jepsen: %v\n", err)
			return 1
		}
	}
	if *readme != "" {
		if err := updateReadme(*readme, table, *matrix); err != nil {
			fmt.Fprintf(stderr, "tally-jepsen: %v\n", err)
			return 1
		}
	}
	for _, r := range results {
		if !r.ok() {
			fmt.Fprintf(stdout, "\nFAILED: %s (report in %s)\n", r.spec.name(), r.res.Dir)
			return 1
		}
	}
	return 0
}

// checkSaved runs every checker over a saved history and prints the verdicts.
func checkSaved(path string, stdout, stderr io.Writer) int {
	h, err := check.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "tally-jepsen: %v\n", err)
		return 1
	}
	vs := check.All(h, "")
	for _, v := range vs {
		status := "ok"
		if !v.OK {
			status = "FAIL"
		}
		fmt.Fprintf(stdout, "%-16s %-4s %s\n", v.Name, status, v.Promise)
		for _, p := range v.Problems {
			fmt.Fprintf(stdout, "    %s\n", p)
		}
	}
	if !check.Passed(vs) {
		return 1
	}
	return 0
}

func splitTags(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// spec is one run of a matrix.
type spec struct {
	nemesis  string
	groups   int
	seed     int64
	duration time.Duration
	tags     []string // a planted bug's build tags
	expect   string   // with tags: the checker the planted bug must make fail
	secure   bool     // TLS and users on every node (harness.Config.Secure)
}

func (s spec) name() string {
	n := fmt.Sprintf("%s-g%d-s%d", s.nemesis, s.groups, s.seed)
	if s.secure {
		n += "-tls"
	}
	if len(s.tags) > 0 {
		n = strings.Join(s.tags, "+") + "-" + n
	}
	return n
}

// planted are runs against deliberately broken servers: each must be caught.
var planted = []spec{
	// Retries of requests whose answer was lost are applied again.
	{nemesis: "flaky", groups: 1, seed: 101, duration: 30 * time.Second, tags: []string{"tally_bug_nodedup"}, expect: "exactly-once"},
	// Writes are acknowledged before they commit, and an isolated leader loses them.
	{nemesis: "isolate-leader", groups: 1, seed: 102, duration: 12 * time.Second, tags: []string{"tally_bug_earlyack"}, expect: "exactly-once"},
	// A move removes the leaving replica before the new one votes: the group runs on two
	// voters meanwhile.
	{nemesis: "kill-during-move", groups: 3, seed: 103, duration: 10 * time.Second, tags: []string{"tally_bug_earlyremove"}, expect: "placement"},
}

var matrices = map[string][]spec{
	"quick": append([]spec{
		// With TLS between every node and users on the API.
		{nemesis: harness.Mixed, groups: 1, seed: 1, duration: 15 * time.Second, secure: true},
		{nemesis: harness.Mixed, groups: 3, seed: 2, duration: 15 * time.Second},
		// A node SIGKILLed in the middle of a move (add or drain): the move resumes or rolls back.
		{nemesis: "kill-during-move", groups: 3, seed: 3, duration: 10 * time.Second},
	}, planted...),
	"full":    fullMatrix(),
	"planted": planted,
}

func fullMatrix() []spec {
	var out []spec
	for i, n := range append(append([]string(nil), harness.Nemeses...), harness.Mixed) {
		for _, g := range []int{1, 3} {
			if g == 1 && slices.Contains(harness.ScaleNemeses, n) {
				continue // one group of three replicas barely moves when a node joins
			}
			d := 15 * time.Second
			if n == harness.Mixed {
				d = 40 * time.Second
			}
			out = append(out, spec{nemesis: n, groups: g, seed: int64(10*i + g), duration: d})
		}
	}
	// The mixed faults again with TLS between every node and users on the API.
	out = append(out, spec{nemesis: harness.Mixed, groups: 3, seed: 1003, duration: 40 * time.Second, secure: true})
	return append(out, planted...)
}

// outcome is a finished run.
type outcome struct {
	spec spec
	res  *harness.Result
}

// ok: a normal run passed every checker; a planted run was carried out and the expected
// checker failed.
func (o outcome) ok() bool {
	if o.spec.expect == "" {
		return o.res.Passed()
	}
	if o.res.Err != nil {
		return false
	}
	for _, v := range o.res.Verdicts {
		if v.Name == o.spec.expect {
			return !v.OK
		}
	}
	return false
}

func runAll(ctx context.Context, runs []spec, report string, logger *slog.Logger, stdout io.Writer) ([]outcome, error) {
	root, err := harness.ModuleRoot()
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(report) {
		report = filepath.Join(root, report)
	}
	if err := os.MkdirAll(report, 0o755); err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "starting MariaDB...\n")
	db, err := mariadbtest.StartMain()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	store := func(ctx context.Context, name string) (string, string, error) {
		dsn, err := db.CreateDatabase(ctx, name)
		return dsn, fmt.Sprintf("127.0.0.1:%d", db.Port()), err
	}
	bins := map[string]string{}
	var out []outcome
	for i, s := range runs {
		key := strings.Join(s.tags, ",")
		if bins[key] == "" {
			fmt.Fprintf(stdout, "building tally (tags %q)...\n", key)
			b, err := harness.Build(ctx, root, report, s.tags)
			if err != nil {
				return nil, err
			}
			bins[key] = b
		}
		fmt.Fprintf(stdout, "[%d/%d] %s: %s of faults...\n", i+1, len(runs), s.name(), s.duration)
		res := harness.Run(ctx, harness.Config{Name: s.name(), Seed: s.seed, Groups: s.groups, Nemesis: s.nemesis,
			Duration: s.duration, Bin: bins[key], Report: report, Store: store, Logger: logger, Secure: s.secure})
		o := outcome{s, res}
		out = append(out, o)
		fmt.Fprintf(stdout, "[%d/%d] %s: %s in %s\n", i+1, len(runs), s.name(), verdictLine(o), res.Elapsed.Round(time.Second))
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

func verdictLine(o outcome) string {
	var failed []string
	for _, v := range o.res.Verdicts {
		if !v.OK {
			p := fmt.Sprintf("%s broken (%s)", v.Name, v.Promise)
			if len(v.Problems) > 0 {
				p += ": " + v.Problems[0]
			}
			failed = append(failed, p)
		}
	}
	status := "PASS"
	if !o.ok() {
		status = "FAIL"
	}
	switch {
	case o.res.Err != nil:
		return fmt.Sprintf("%s (the run could not be carried out: %v)", status, o.res.Err)
	case o.spec.expect != "" && o.ok():
		return fmt.Sprintf("%s (planted bug caught: %s)", status, strings.Join(failed, "; "))
	case o.spec.expect != "":
		return fmt.Sprintf("%s (planted bug NOT caught by %s)", status, o.spec.expect)
	case len(failed) > 0:
		return fmt.Sprintf("%s (%s)", status, strings.Join(failed, "; "))
	}
	return status
}
