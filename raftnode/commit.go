package raftnode

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/siddhiql"
)

// request is one ingest call waiting for the group committer.
type request struct {
	ctx   context.Context
	parts []fsm.Part
	// first is the position of this request's parts in the entry.
	first  int
	events int
	done   chan ingestReply
}

type ingestReply struct {
	res *IngestResult
	err error
}

// IngestResult is the outcome of an ingest call: the entry's log index and, per part,
// whether it applied, was a duplicate, or failed (with the reason).
type IngestResult struct {
	Index uint64
	Parts []fsm.PartResult
}

// Ingest proposes parts through the group committer: concurrent calls are coalesced into
// one Raft entry (up to MaxBatchEvents events; while an earlier entry is in flight, waiting
// at most Linger for company). It returns once the entry is committed and applied here.
// Parts are checked against the current schema first; a part that fails the check is
// reported in its PartResult and never reaches the log. The caller hands parts over:
// neither it nor anyone else may read or modify their rows after the call, as this
// replica's FSM applies them as they are. Errors: ErrNotLeader (nothing proposed),
// ErrUnknownOutcome (retry with the same producer seq), ErrBacklog (the shared store is down
// and the backlog is full), ErrClosed, or ctx's error.
func (n *Node) Ingest(ctx context.Context, parts []fsm.Part) (*IngestResult, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	if !n.IsLeader() {
		return nil, ErrNotLeader
	}
	if err := n.backlogError(); err != nil {
		return nil, err
	}
	r := &request{ctx: ctx, parts: parts, done: make(chan ingestReply, 1)}
	for _, p := range parts {
		r.events += len(p.Events)
	}
	select {
	case n.reqs <- r:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-n.stop:
		return nil, ErrClosed
	}
	select {
	case rep := <-r.done:
		if rep.err == nil && n.flush.failing.Load() {
			// Between flush attempts, count every event as a new row of each granularity:
			// an upper bound, so the backlog bound is never overrun while the store is down.
			n.flush.unflushed.Add(int64(r.events * len(siddhiql.AllDurations)))
		}
		return rep.res, rep.err
	case <-ctx.Done():
		// The entry may still commit: the caller retries with the same producer seq.
		return nil, errors.Join(ErrUnknownOutcome, ctx.Err())
	case <-n.stop:
		// commitLoop may have stopped with this request still queued: nobody would answer.
		select {
		case rep := <-r.done:
			return rep.res, rep.err
		default:
		}
		return nil, errors.Join(ErrClosed, ErrUnknownOutcome)
	}
}

// inflight counts the committer's entries proposed and not yet applied (or failed).
type inflight struct {
	n atomic.Int64
	// settled gets a token when the count drops to zero.
	settled chan struct{}
}

func (f *inflight) add() { f.n.Add(1) }

func (f *inflight) done() {
	if f.n.Add(-1) == 0 {
		select {
		case f.settled <- struct{}{}:
		default:
		}
	}
}

// busy reports whether an entry is in flight, dropping a stale settled token first, so that
// a token received afterwards means an entry settled after the call.
func (f *inflight) busy() bool {
	select {
	case <-f.settled:
	default:
	}
	return f.n.Load() > 0
}

// commitLoop gathers requests into entries. Proposing is asynchronous (raft.Apply only
// enqueues), so the next entry gathers while the previous one replicates. A request that
// finds no entry in flight is proposed at once (with whatever else is queued): waiting
// could only add latency. While an entry is in flight, the loop lingers for more requests,
// up to Linger, until that entry is applied or the batch is full.
func (n *Node) commitLoop() {
	defer n.wg.Done()
	fl := &inflight{settled: make(chan struct{}, 1)}
	for {
		var batch []*request
		select {
		case <-n.stop:
			return
		case r := <-n.reqs:
			batch = append(batch, r)
		}
		events := batch[0].events
		if n.cfg.Linger > 0 && events < n.cfg.MaxBatchEvents && fl.busy() {
			timer := time.NewTimer(n.cfg.Linger)
		gather:
			for events < n.cfg.MaxBatchEvents {
				select {
				case r := <-n.reqs:
					batch = append(batch, r)
					events += r.events
				case <-fl.settled:
					break gather
				case <-timer.C:
					break gather
				case <-n.stop:
					break gather
				}
			}
			timer.Stop()
		}
		// Take whatever else is already queued, within the bound.
	drain:
		for events < n.cfg.MaxBatchEvents {
			select {
			case r := <-n.reqs:
				batch = append(batch, r)
				events += r.events
			default:
				break drain
			}
		}
		n.proposeBatch(batch, fl)
	}
}

// proposeBatch checks every request's parts, proposes the good ones as one entry and
// answers each request when the entry applies. The entry counts in fl until then.
func (n *Node) proposeBatch(batch []*request, fl *inflight) {
	cmd := &fsm.Command{Kind: fsm.KindBatch}
	var live []*request
	for _, r := range batch {
		if r.ctx.Err() != nil {
			r.done <- ingestReply{err: r.ctx.Err()}
			continue
		}
		r.first = len(cmd.Parts)
		cmd.Parts = append(cmd.Parts, r.parts...)
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	// Refuse bad parts before they reach the log: they become empty placeholders so
	// positions stay aligned, and their error is reported directly.
	checks := n.fsm.CheckBatch(cmd.Parts)
	for i, err := range checks {
		if err != nil {
			cmd.Parts[i] = fsm.Part{Stream: cmd.Parts[i].Stream}
		}
	}
	cmd.Time = n.stamp()
	data, err := cmd.MarshalBinary()
	if err != nil {
		for _, r := range live {
			r.done <- ingestReply{err: err}
		}
		return
	}
	events := 0
	for _, p := range cmd.Parts {
		events += len(p.Events)
	}
	n.metrics.batchEvents.Observe(float64(events))
	start := time.Now()
	if !bugEarlyAck {
		// This replica's FSM applies cmd itself when the entry comes back with these very
		// bytes, instead of decoding them; cmd is not touched here after this.
		n.fsm.RememberProposal(data, cmd)
	}
	fl.add()
	f := n.raft.Apply(data, n.cfg.ApplyTimeout)
	if bugEarlyAck {
		fl.done()
		n.ackEarly(live, checks)
		return
	}
	go func() {
		err := waitFuture(context.Background(), f)
		n.fsm.ForgetProposal(data)
		fl.done()
		var res *fsm.ApplyResult
		if err == nil {
			n.metrics.commit.Observe(time.Since(start).Seconds())
			var ok bool
			if res, ok = f.Response().(*fsm.ApplyResult); !ok {
				err = errors.New("raftnode: unexpected apply response")
			}
		}
		for _, r := range live {
			if err != nil {
				r.done <- ingestReply{err: err}
				continue
			}
			out := &IngestResult{Index: res.Index, Parts: make([]fsm.PartResult, len(r.parts))}
			for i := range r.parts {
				j := r.first + i
				if checks != nil && checks[j] != nil {
					out.Parts[i] = fsm.PartResult{Err: checks[j]}
				} else {
					out.Parts[i] = res.Parts[j]
				}
			}
			r.done <- ingestReply{res: out}
		}
	}()
}

// ackEarly is the planted bug of bug_earlyack.go (compiled out unless built with
// -tags tally_bug_earlyack): it answers every request as applied before its entry commits,
// with the last log index as a guess of the entry's.
func (n *Node) ackEarly(live []*request, checks []error) {
	index := n.raft.LastIndex()
	for _, r := range live {
		out := &IngestResult{Index: index, Parts: make([]fsm.PartResult, len(r.parts))}
		for i, p := range r.parts {
			if j := r.first + i; checks != nil && checks[j] != nil {
				out.Parts[i] = fsm.PartResult{Err: checks[j]}
			} else {
				out.Parts[i] = fsm.PartResult{Events: len(p.Events)}
			}
		}
		r.done <- ingestReply{res: out}
	}
}
