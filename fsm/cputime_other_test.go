//go:build !unix

package fsm

import "time"

// processCPU cannot be read here.
func processCPU() time.Duration { return 0 }
