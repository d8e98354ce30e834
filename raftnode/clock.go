package raftnode

import (
	"sync/atomic"
	"time"
)

// OffsetClock is the wall clock shifted by an adjustable offset, for skewing a leader's
// stamped time in fault-injection tests (Config.Clock = c.Now). The zero value is the wall
// clock. It is safe for concurrent use.
type OffsetClock struct {
	offset atomic.Int64 // nanoseconds
}

// Now is time.Now plus the offset.
func (c *OffsetClock) Now() time.Time { return time.Now().Add(c.Offset()) }

// Offset is the current offset.
func (c *OffsetClock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// SetOffset sets the offset and returns the previous one.
func (c *OffsetClock) SetOffset(d time.Duration) (previous time.Duration) {
	return time.Duration(c.offset.Swap(int64(d)))
}
