package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestAllClean(t *testing.T) {
	dir := t.TempDir()
	vs := All(cleanHistory(), dir)
	var names []string
	for _, v := range vs {
		expect(t, v, true)
		names = append(names, v.Name)
	}
	want := []string{"exactly-once", "linearizable", "convergence", "store-monotonic", "alerts", "timings", "placement"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("verdicts %v, want %v", names, want)
	}
	if !Passed(vs) {
		t.Error("Passed = false for a clean history")
	}
	if _, err := os.Stat(filepath.Join(dir, "linearizability.html")); err != nil {
		t.Errorf("no visualization: %v", err)
	}
}

func TestAllFindsAnomaly(t *testing.T) {
	h := cleanHistory()
	h.FinalLive["k1"][t0] = 1
	vs := All(h, "")
	if Passed(vs) {
		t.Fatal("Passed = true with an acknowledged event lost")
	}
	for _, v := range vs {
		if v.Name == "exactly-once" && v.OK {
			t.Error("exactly-once passed with an acknowledged event lost")
		}
	}
}

func TestPassed(t *testing.T) {
	for _, c := range []struct {
		name string
		vs   []Verdict
		want bool
	}{
		{"none", nil, false},
		{"all ok", []Verdict{{OK: true}, {OK: true}}, true},
		{"one failed", []Verdict{{OK: true}, {OK: false}}, false},
	} {
		if got := Passed(c.vs); got != c.want {
			t.Errorf("%s: Passed = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.json")
	h := cleanHistory()
	if err := Save(path, h); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(h)
	b, _ := json.Marshal(got)
	if !bytes.Equal(a, b) {
		t.Errorf("round trip changed the history:\n%s\n%s", a, b)
	}
	if !reflect.DeepEqual(got.FinalLive, h.FinalLive) || got.Ops[3].Invoke != h.Ops[3].Invoke {
		t.Errorf("round trip lost counts or times")
	}
	if !ExactlyOnce(got).OK {
		t.Error("a loaded history fails where the saved one passes")
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"ops": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	var syntax *json.SyntaxError
	_, err := Load(bad)
	if !errors.As(err, &syntax) {
		t.Errorf("bad JSON: %v, want a *json.SyntaxError", err)
	}
	if err := Save(filepath.Join(dir, "no", "such", "dir.json"), cleanHistory()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("save into a missing directory: %v, want fs.ErrNotExist", err)
	}
}
