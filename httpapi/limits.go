package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Limits bounds what requests may hold of a node. Zero fields mean the defaults.
type Limits struct {
	// MaxWait bounds how long a read waits for ?min_index= to be applied on this replica
	// before answering 503 with the index it reached. Default 10s.
	MaxWait time.Duration
	// MaxSubscribers bounds the open subscriptions (Server-Sent Events) of this node; one
	// more answers 503. Default 1,000.
	MaxSubscribers int
	// SubscriberWriteTimeout drops a subscriber whose connection took no bytes for this
	// long (a client that stopped reading). Default 30s.
	SubscriberWriteTimeout time.Duration
}

// Defaults of Limits.
const (
	DefaultMaxWait                = 10 * time.Second
	DefaultMaxSubscribers         = 1000
	DefaultSubscriberWriteTimeout = 30 * time.Second
)

// withDefaults fills in the zero fields.
func (l Limits) withDefaults() Limits {
	if l.MaxWait <= 0 {
		l.MaxWait = DefaultMaxWait
	}
	if l.MaxSubscribers <= 0 {
		l.MaxSubscribers = DefaultMaxSubscribers
	}
	if l.SubscriberWriteTimeout <= 0 {
		l.SubscriberWriteTimeout = DefaultSubscriberWriteTimeout
	}
	return l
}

// permanent is implemented by errors that say whether retrying could ever help: a store
// that cannot hold a name, say. A permanent error answers 400, not 503 + Retry-After.
type permanent interface {
	Permanent() bool
}

// isPermanent reports whether err, or an error it wraps, says it is permanent.
func isPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p) && p.Permanent()
}

// minIndexSlack is how far beyond a replica's last log index a min_index may lie and still
// be waited for: a replica lags its leader by far less, so an index further out (2^64-1,
// say) was never answered by an ingest and is refused at once.
const minIndexSlack = 1 << 32

// errMinIndex marks a min_index that no replica of the group will reach.
var errMinIndex = errors.New("min_index is far beyond the group's log")

// checkMinIndex refuses (errMinIndex) an index for group g that lies more than
// minIndexSlack beyond this replica's last log index.
func (s *Server) checkMinIndex(g int, index uint64) error {
	if index <= minIndexSlack {
		return nil
	}
	if last := s.groups[g].Status().LastIndex; index-minIndexSlack > last {
		return fmt.Errorf("%w: min_index %d for group %d, and this replica's last log index is %d: use the index an ingest answered", errMinIndex, index, g, last)
	}
	return nil
}

// minIndexContext bounds ctx by Limits.MaxWait when a read waits for a min_index.
func (s *Server) minIndexContext(ctx context.Context, min []uint64) (context.Context, context.CancelFunc) {
	for _, m := range min {
		if m > 0 {
			return context.WithTimeout(ctx, s.cfg.Limits.withDefaults().MaxWait)
		}
	}
	return ctx, func() {}
}

// minIndexTimeout says, when err is a read's wait for min (per group) that ran out of
// Limits.MaxWait while the request itself was still live, which index it waited for and
// where the replica is. ok is false for any other error.
func (s *Server) minIndexTimeout(req context.Context, err error, min []uint64) (msg string, ok bool) {
	if err == nil || req.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
		return "", false
	}
	var parts []string
	for g, m := range min {
		if m == 0 {
			continue
		}
		if applied := s.groups[g].Status().AppliedIndex; applied < m {
			parts = append(parts, fmt.Sprintf("index %d of group %d (this replica has applied %d)", m, g, applied))
		}
	}
	if len(parts) == 0 {
		return "", false
	}
	return fmt.Sprintf("waited %s (--max-wait) for min_index: %s; retry later or read from the leader", s.cfg.Limits.withDefaults().MaxWait, strings.Join(parts, ", ")), true
}
