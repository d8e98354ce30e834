package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tally-db/tally/fsm"
)

// loader is one client ingesting single events (key g<i>, value 1) with its own producer ID
// and consecutive seqs, always against whichever node leads. A retrying loader sends a seq
// again until it is acknowledged; the other one gives up a seq whose outcome is unknown.
type loader struct {
	id    int
	retry bool

	acks    atomic.Int64
	acked   []uint64 // written by the loader goroutine only; read after it ends
	unknown []uint64
}

// maxSeq keeps every loader's seqs well inside the dedup window (fsm.Window).
const maxSeq = 800

func (l *loader) key() string      { return fmt.Sprintf("g%d", l.id) }
func (l *loader) producer() string { return fmt.Sprintf("p%d", l.id) }

// run ingests until stop is closed (between seqs), ctx ends or maxSeq is reached. onAck is
// called with the node that acknowledged each write.
func (l *loader) run(ctx context.Context, t *testing.T, c *cluster, stop <-chan struct{}, onAck func(*Node)) {
	for seq := uint64(1); seq <= maxSeq; seq++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		for {
			if ctx.Err() != nil {
				return
			}
			node := anyLeader(c)
			if node == nil {
				pause(ctx)
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			res, err := node.Ingest(rctx, []fsm.Part{part(l.producer(), seq, row(l.key(), 1))})
			cancel()
			if err == nil {
				if p := res.Parts[0]; p.Err != nil {
					t.Errorf("loader %d seq %d: part error %v", l.id, seq, p.Err)
					return
				}
				l.acked = append(l.acked, seq)
				l.acks.Add(1)
				onAck(node)
				break
			}
			if errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader) {
				pause(ctx) // nothing was proposed: the same seq is simply sent again
				continue
			}
			// ErrUnknownOutcome, ErrClosed, a timeout: the entry may still commit.
			if !l.retry {
				l.unknown = append(l.unknown, seq)
				break
			}
		}
	}
}

// anyLeader returns a live node that believes it leads, or nil.
func anyLeader(c *cluster) *Node {
	for _, n := range c.live() {
		if n.IsLeader() {
			return n
		}
	}
	return nil
}

// pause is a client's retry backoff, not synchronization.
func pause(ctx context.Context) {
	t := time.NewTimer(5 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func TestNode_LeaderFailure(t *testing.T) {
	// partition: the leader is cut off and later heals; crash: cut off, then closed (no
	// handover possible); close: a graceful Close that hands leadership over.
	for _, mode := range []string{"partition", "crash", "close"} {
		t.Run(mode, func(t *testing.T) { testLeaderFailure(t, mode) })
	}
}

func testLeaderFailure(t *testing.T, mode string) {
	c := newCluster(t, 3)
	c.deploy()
	old := c.waitLeader(testTimeout)
	oldIdx := c.indexOf(old)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var (
		failedAt  atomic.Int64 // unix nanos when the leader was taken down
		recovered atomic.Int64 // unix nanos of the first ack by another node after that
	)
	onAck := func(n *Node) {
		if f := failedAt.Load(); f != 0 && n != old {
			recovered.CompareAndSwap(0, time.Now().UnixNano())
		}
	}
	loaders := []*loader{{id: 0, retry: true}, {id: 1}, {id: 2, retry: true}, {id: 3}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, l := range loaders {
		wg.Go(func() { l.run(ctx, t, c, stop, onAck) })
	}
	stopped := false
	stopLoad := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopLoad()

	eventually(t, testTimeout, func() bool {
		for _, l := range loaders {
			if l.acks.Load() < 20 {
				return false
			}
		}
		return true
	}, "steady load before the failure")

	failedAt.Store(time.Now().UnixNano())
	switch mode {
	case "partition":
		c.isolate(oldIdx)
	case "crash":
		c.isolate(oldIdx)
		c.stop(oldIdx)
	case "close":
		c.stop(oldIdx)
	}
	survivors := func() []*Node { return c.others(old) }
	leader := waitLeaderOf(t, survivors, testTimeout)
	elected := time.Duration(time.Now().UnixNano() - failedAt.Load())
	eventually(t, testTimeout, func() bool { return recovered.Load() != 0 }, "a write acknowledged by the new leader")
	failover := time.Duration(recovered.Load() - failedAt.Load())
	t.Logf("%s: old leader %s, new leader %s seen after %s, first write acknowledged by it after %s",
		mode, old.ID(), leader.ID(), elected.Round(time.Millisecond), failover.Round(time.Millisecond))
	if failover > 3*time.Second {
		t.Errorf("failover took %s", failover)
	}

	// More load on the new leader, then stop.
	base := make([]int64, len(loaders))
	for i, l := range loaders {
		base[i] = l.acks.Load()
	}
	eventually(t, testTimeout, func() bool {
		for i, l := range loaders {
			if l.acks.Load() < base[i]+10 {
				return false
			}
		}
		return true
	}, "load continues on the new leader")
	stopLoad()
	if mode == "partition" {
		c.heal()
	}

	leader = c.waitLeader(testTimeout)
	got := totals(t, leader, Linearizable, 0)
	for _, l := range loaders {
		a := got[l.key()]
		if a.total != a.n {
			t.Errorf("%s: total %d != count %d", l.key(), a.total, a.n)
		}
		acked, unknown := int64(len(l.acked)), int64(len(l.unknown))
		t.Logf("loader %d (retry %v): %d acknowledged, %d unknown, counted %d", l.id, l.retry, acked, unknown, a.n)
		if l.retry {
			for i, s := range l.acked {
				if s != uint64(i+1) {
					t.Fatalf("loader %d: acknowledged seq %d at position %d", l.id, s, i)
				}
			}
			if a.n != acked {
				t.Errorf("%s: counted %d, acknowledged %d: want exactly once", l.key(), a.n, acked)
			}
			continue
		}
		if a.n < acked || a.n > acked+unknown {
			t.Errorf("%s: counted %d, want between %d acknowledged and %d with every unknown outcome", l.key(), a.n, acked, acked+unknown)
		}
		// Retrying each unknown seq makes it count exactly once.
		for _, seq := range l.unknown {
			ingest(t, leader, l.producer(), seq, row(l.key(), 1))
		}
	}
	got = totals(t, leader, Linearizable, 0)
	for _, l := range loaders {
		if want := int64(len(l.acked) + len(l.unknown)); got[l.key()].n != want {
			t.Errorf("%s after retrying unknown outcomes: counted %d, want %d", l.key(), got[l.key()].n, want)
		}
	}
	c.waitConverged(testTimeout)
}

func TestNode_CloseTransfersLeadership(t *testing.T) {
	c := newCluster(t, 3)
	c.deploy()
	old := c.waitLeader(testTimeout)
	oldTerm := old.Status().Term

	start := time.Now()
	c.stop(c.indexOf(old))
	closed := time.Since(start)
	leader := waitLeaderOf(t, func() []*Node { return c.others(old) }, testTimeout)
	handover := time.Since(start)
	t.Logf("Close on leader %s took %s; %s led after %s", old.ID(), closed.Round(time.Millisecond), leader.ID(), handover.Round(time.Millisecond))
	// A transfer needs no election timeout; a plain election would take several.
	if handover > time.Second {
		t.Errorf("new leader after %s: leadership was not handed over", handover)
	}
	if term := leader.Status().Term; term <= oldTerm {
		t.Errorf("new leader's term %d, old %d", term, oldTerm)
	}
	res := ingest(t, leader, "p", 1, row("a", 1))
	c.waitApplied(res.Index)

	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	if _, err := old.Ingest(ctx, []fsm.Part{part("p", 2, row("a", 1))}); !errors.Is(err, ErrClosed) {
		t.Errorf("ingest on a closed node: %v, want ErrClosed", err)
	}
	if _, _, err := old.Deploy(ctx, testApp); !errors.Is(err, ErrClosed) {
		t.Errorf("deploy on a closed node: %v, want ErrClosed", err)
	}
	if err := old.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Close must answer every Ingest call in flight: none may be left waiting for its context.
func TestNode_CloseAnswersPendingIngests(t *testing.T) {
	c := newCluster(t, 1)
	c.deploy()
	leader := c.waitLeader(testTimeout)

	const clients = 32
	errs := make(chan error, clients)
	var sent atomic.Int64
	for g := range clients {
		go func() {
			for seq := uint64(1); ; seq++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := leader.Ingest(ctx, []fsm.Part{part(fmt.Sprint("p", g), seq, row("a", 1))})
				cancel()
				sent.Add(1)
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	eventually(t, testTimeout, func() bool { return sent.Load() > 200 }, "load running")
	c.stop(0)
	closedAt := time.Now()
	for range clients {
		err := <-errs
		if errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("an Ingest call waited %s after Close for its deadline: %v", time.Since(closedAt).Round(time.Millisecond), err)
			continue
		}
		if !errors.Is(err, ErrClosed) && !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrUnknownOutcome) {
			t.Errorf("Ingest during Close: %v", err)
		}
	}
}
