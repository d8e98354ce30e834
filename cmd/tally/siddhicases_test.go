package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A Siddhi case is one file under testdata/siddhi/<area>/<name>.txt, made of sections, each
// started by a line "-- NAME --":
//
//	-- source --       where the case comes from (the Siddhi test it was translated from)
//	-- app --          the SiddhiQL app
//	-- app 2 --        optional: further apps (app 3, ...), deployed after it in order
//	-- events --       replay's NDJSON input (see `tally replay -h`)
//	-- query --        optional: a store query answered after the events
//	-- want --         replay's exact output (the outputs as NDJSON, or the query answer)
//
// Text before the first section is a comment. TestSiddhiCases feeds each case through
// `tally replay` and compares the output with "want".
func TestSiddhiCases(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "siddhi", "*", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no cases under testdata/siddhi")
	}
	for _, f := range files {
		name := filepath.Base(filepath.Dir(f)) + "/" + strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sec, err := splitSections(string(b))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for _, need := range []string{"source", "app", "events", "want"} {
				if _, ok := sec[need]; !ok {
					t.Fatalf("%s: no %q section", f, need)
				}
			}
			dir := t.TempDir()
			app, events := filepath.Join(dir, "app.siddhi"), filepath.Join(dir, "events.ndjson")
			if err := os.WriteFile(app, []byte(sec["app"]), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(events, []byte(sec["events"]), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"replay", "--app", app}
			// Further apps, linked to the first by inMemory topics: sections "app 2", "app 3", ...
			for i := 2; ; i++ {
				more, ok := sec[fmt.Sprintf("app %d", i)]
				if !ok {
					break
				}
				p := filepath.Join(dir, fmt.Sprintf("app%d.siddhi", i))
				if err := os.WriteFile(p, []byte(more), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--app", p)
			}
			args = append(args, "--events", events)
			if q := strings.TrimSpace(sec["query"]); q != "" {
				args = append(args, "--query", q)
			}
			code, out, errOut := tally(t, args...)
			if code != 0 {
				t.Fatalf("%s: exit %d: %s", f, code, errOut)
			}
			if want := sec["want"]; strings.TrimSpace(out) != strings.TrimSpace(want) {
				t.Errorf("%s (from %s):\n got:\n%s\nwant:\n%s", f, strings.TrimSpace(sec["source"]), out, want)
			}
		})
	}
}

// splitSections splits a case file into its "-- NAME --" sections.
func splitSections(text string) (map[string]string, error) {
	sec := map[string]string{}
	cur := ""
	var b strings.Builder
	flush := func() {
		if cur != "" {
			sec[cur] = b.String()
		}
		b.Reset()
	}
	for _, line := range strings.SplitAfter(text, "\n") {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, "-- ") && strings.HasSuffix(l, " --") && len(l) > 6 {
			flush()
			cur = strings.TrimSpace(l[3 : len(l)-3])
			if _, dup := sec[cur]; dup {
				return nil, &sectionError{cur}
			}
			continue
		}
		if cur != "" {
			b.WriteString(line)
		}
	}
	flush()
	return sec, nil
}

type sectionError struct{ name string }

func (e *sectionError) Error() string { return "section " + e.name + " appears twice" }
