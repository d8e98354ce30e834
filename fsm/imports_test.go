package fsm

import (
	"encoding/json"
	"os/exec"
	"testing"
)

// TestImports enforces the arrows: fsm adapts the engine to Raft and must not reach for I/O,
// wall clocks or randomness. Only direct imports count (raft itself pulls in net and time).
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkg struct{ Imports []string }
	if err := json.Unmarshal(out, &pkg); err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		"net/http":     "no transport in the state machine",
		"database/sql": "no I/O in Apply",
		"math/rand":    "determinism",
		"math/rand/v2": "determinism",
		"hash/maphash": "per-process seed",
		"time":         "the only clock is the stamped time in commands",
	}
	if len(pkg.Imports) == 0 {
		t.Fatal("go list reported no imports")
	}
	for _, p := range pkg.Imports {
		if why, ok := bad[p]; ok {
			t.Errorf("fsm imports %s: %s", p, why)
		}
	}
}
