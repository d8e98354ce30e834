//go:build unix

package fsm

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used (user and system, every thread: the
// collector's workers included), or zero where it cannot be read.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
