package siddhiql

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/siddhiql/**/*.golden")

const testdataDir = "../testdata/siddhiql"

// checkGolden compares got with the golden file, or rewrites it under -update.
func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./siddhiql -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs; run with -update and review the diff.\n--- got ---\n%s\n--- want ---\n%s", golden, got, want)
	}
}

func TestParse_Golden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdataDir, "*.siddhi"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found %d testdata apps, want at least 4", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			app, err := Parse(string(src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkGolden(t, strings.TrimSuffix(f, ".siddhi")+".golden", Dump(app))
		})
	}
}

func TestParse_GoldenInvalid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdataDir, "invalid", "*.siddhi"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no invalid testdata apps")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(string(src))
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error = %v, want an *Error", err)
			}
			checkGolden(t, strings.TrimSuffix(f, ".siddhi")+".golden", err.Error()+"\n")
		})
	}
}
