package check

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// LinearizabilityTimeout is how long All lets the linearizability checker search.
const LinearizabilityTimeout = 2 * time.Minute

// All runs every checker over h. With a reportDir, the linearizability visualization is
// written to reportDir/linearizability.html (the directory must exist).
func All(h *History, reportDir string) []Verdict {
	html := ""
	if reportDir != "" {
		html = filepath.Join(reportDir, "linearizability.html")
	}
	return []Verdict{
		ExactlyOnce(h),
		Linearizable(h, html, LinearizabilityTimeout),
		Convergence(h),
		StoreMonotonic(h),
		Alerts(h),
		Timings(h),
		Placement(h),
	}
}

// Passed reports whether every verdict is OK; no verdicts at all is not a pass.
func Passed(vs []Verdict) bool {
	for _, v := range vs {
		if !v.OK {
			return false
		}
	}
	return len(vs) > 0
}

// Save writes h to path as indented JSON.
func Save(path string, h *History) error {
	data, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return fmt.Errorf("encode history: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("save history: %w", err)
	}
	return nil
}

// Load reads a history Save wrote.
func Load(path string) (*History, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load history: %w", err)
	}
	var h History
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("load history %s: %w", path, err)
	}
	return &h, nil
}
