package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/tally-db/tally/fsm"
	"github.com/tally-db/tally/partition"
	"github.com/tally-db/tally/raftnode"
	"github.com/tally-db/tally/siddhiql"
)

// The ingest route: every ingest request, whichever node takes it, goes through one path.
// The edge (handleIngest) reads the body and the producer headers and hands them to
// ingester.request, which decodes the events against the stream's schema once, splits them
// over the groups (partition.Router) and passes each group's part to that group's leader:
// this node's replica when it leads the group (raftnode Ingest), else the batch this node is
// forwarding to the leader (routebatch.go). Every part comes back as a typed partResult
// (group, Raft index, events, duplicate, an outcome code and message); only the edge turns
// results into HTTP.

// code is the outcome of one part. The values travel between nodes: append, never renumber.
type code uint8

const (
	codeOK code = iota
	codeBadRequest
	codeUnknownStream
	codeForbidden
	codeTooLarge
	// codeConflict: the producer's seq is older than its deduplication window.
	codeConflict
	// codeTooManyRequests: the producer table is full.
	codeTooManyRequests
	// codeNotLeader: the node asked does not lead the group; nothing was proposed, so the
	// part is sent again to the leader it names next.
	codeNotLeader
	// codeUnavailable: the part may or may not have applied (or nothing could be tried):
	// the client retries with the same Producer-Id and Producer-Seq.
	codeUnavailable
	codeInternal
	numCodes
)

// status is the HTTP status a part's code answers with.
func (c code) status() int {
	switch c {
	case codeOK:
		return http.StatusOK
	case codeBadRequest:
		return http.StatusBadRequest
	case codeUnknownStream:
		return http.StatusNotFound
	case codeForbidden:
		return http.StatusForbidden
	case codeTooLarge:
		return http.StatusRequestEntityTooLarge
	case codeConflict:
		return http.StatusConflict
	case codeTooManyRequests:
		return http.StatusTooManyRequests
	case codeNotLeader, codeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// codeOfStatus is the code of an HTTP status errorStatus gave.
func codeOfStatus(status int) code {
	switch status {
	case http.StatusOK:
		return codeOK
	case http.StatusBadRequest:
		return codeBadRequest
	case http.StatusNotFound:
		return codeUnknownStream
	case http.StatusForbidden:
		return codeForbidden
	case http.StatusRequestEntityTooLarge:
		return codeTooLarge
	case http.StatusConflict:
		return codeConflict
	case http.StatusTooManyRequests:
		return codeTooManyRequests
	case http.StatusServiceUnavailable:
		return codeUnavailable
	}
	return codeInternal
}

// partResult is the typed outcome of one group's part of an ingest request.
type partResult struct {
	group uint32
	// index is the Raft index of the entry that carried the part (0 when none did).
	index uint64
	// events is the number of events the part carried.
	events    int
	duplicate bool
	code      code
	msg       string
	// event (from 0, -1 for none) and field locate a schema error.
	event int
	field string
	// whole: the error is the whole request's, found before it was split over groups.
	whole bool
}

// failed is a part's result with an error.
func failed(g int, c code, msg string) partResult {
	return partResult{group: uint32(g), code: c, msg: msg, event: -1}
}

// errResult is the result of a part that failed with err.
func errResult(g int, err error) partResult {
	if errors.Is(err, raftnode.ErrNotLeader) {
		return failed(g, codeNotLeader, "leadership moved while the request was forwarded; retry")
	}
	status, msg := errorStatus(err)
	return failed(g, codeOfStatus(status), msg)
}

// appliedResult is the result of a part the group's entry at index carried.
func appliedResult(g int, index uint64, events int, p fsm.PartResult) partResult {
	if p.Err != nil {
		pr := errResult(g, p.Err)
		pr.index = index
		return pr
	}
	return partResult{group: uint32(g), index: index, events: events, duplicate: p.Duplicate, event: -1}
}

// StreamDefs finds a stream's definition for routing and decoding. The default reads this
// node's replicas; a node without one knows no stream, and its requests travel to a leader
// undecoded.
type StreamDefs interface {
	StreamDef(ctx context.Context, name string) (*siddhiql.StreamDef, bool)
}

// replicaDefs reads stream definitions from the first of groups that can be read (a stand-in
// for a group hosted elsewhere borrows a local replica; every group has the same apps). A
// hosted replica answers from its FSM's catalog, without waiting behind Apply.
type replicaDefs []Group

func (d replicaDefs) StreamDef(ctx context.Context, name string) (*siddhiql.StreamDef, bool) {
	for _, g := range d {
		if cat := catalogOf(g); cat != nil {
			return cat.StreamDef(name)
		}
	}
	for _, g := range d {
		var def *siddhiql.StreamDef
		err := g.Read(ctx, raftnode.Stale, 0, func(e fsm.View) {
			def, _ = e.Stream(name)
		})
		if err == nil {
			return def, def != nil
		}
	}
	return nil, false
}

// eitherDefs asks each source in turn.
type eitherDefs []StreamDefs

func (d eitherDefs) StreamDef(ctx context.Context, name string) (*siddhiql.StreamDef, bool) {
	for _, src := range d {
		if def, ok := src.StreamDef(ctx, name); ok {
			return def, true
		}
	}
	return nil, false
}

// catalogOf is the catalog of g's local replica (fsm.Catalog: read without the FSM's lock),
// or nil when this node holds none or the group cannot give one.
func catalogOf(g Group) *fsm.Catalog {
	rep, hosted := replicaOf(g)
	if !hosted {
		return nil
	}
	og, ok := rep.(outboxGroup)
	if !ok {
		return nil
	}
	return og.FSM().Catalog()
}

// groupPart is one group's part of a request.
type groupPart struct {
	g    int
	part fsm.Part
}

// rawRequest is an ingest request as received: the stream, its producer (already scoped to
// the user) and the body, not yet decoded.
type rawRequest struct {
	stream     string
	producerID string
	seq        uint64
	body       []byte
}

// ingester is the ingest route of one node.
type ingester struct {
	s      *Server
	groups []Group
	defs   StreamDefs
	router *partition.Router
	fwd    []*forwarder // per group: the batches forwarded to its leader
}

func newIngester(s *Server, defs StreamDefs) *ingester {
	in := &ingester{s: s, groups: s.groups, defs: defs, router: s.router, fwd: make([]*forwarder, len(s.groups))}
	for g := range in.fwd {
		in.fwd[g] = &forwarder{in: in, g: g}
	}
	return in
}

// unknownStream is the answer for a stream nobody defined.
func unknownStream(g int, stream string) partResult {
	pr := failed(g, codeUnknownStream, fmt.Sprintf("unknown stream %q: deploy an app that defines it (GET /v1/apps lists them)", stream))
	pr.whole = true
	return pr
}

// request ingests one request for group g, or split over every group. With the stream's
// schema it decodes the events and routes the parts; without it (a node with no replica, or
// one that lags) it passes the request undecoded to the leader of g (of group 0 when split),
// unless mayForward is false (the request came that way already) or this node is that
// leader: then the stream is unknown.
func (in *ingester) request(ctx context.Context, g int, split bool, raw rawRequest, user string, mayForward bool) []partResult {
	if split {
		g = 0
	}
	def, ok := in.defs.StreamDef(ctx, raw.stream)
	if !ok {
		if mayForward && !in.groups[g].IsLeader() {
			return in.forwardRaw(ctx, g, split, raw, user)
		}
		return []partResult{unknownStream(g, raw.stream)}
	}
	events, apiErr := decodeEvents(def.Attributes, raw.body)
	if apiErr != nil {
		pr := failed(g, codeBadRequest, apiErr.Error)
		pr.field, pr.whole = apiErr.Field, true
		if apiErr.Event != nil {
			pr.event = *apiErr.Event
		}
		return []partResult{pr}
	}
	part := fsm.Part{Stream: raw.stream, ProducerID: raw.producerID, Seq: raw.seq, Events: events}
	if !split {
		return in.ingest(ctx, []groupPart{{g: g, part: part}}, user)
	}
	routed := in.router.Route(def.Routing, partition.KeyIndex(def), events)
	parts := make([]groupPart, len(routed))
	for i, p := range routed {
		part.Events = p.Events
		parts[i] = groupPart{g: int(p.Group), part: part}
	}
	return in.ingest(ctx, parts, user)
}

// ingest commits each group's part on that group's leader and returns their results in
// order: parts for groups this node leads go to the local replica, the others join the
// batches forwarded to their leaders. The parts go out concurrently: the forwarded ones are
// queued first, then the local ones run (the last on this goroutine).
func (in *ingester) ingest(ctx context.Context, parts []groupPart, user string) []partResult {
	out := make([]partResult, len(parts))
	if len(parts) == 1 {
		out[0] = in.one(ctx, parts[0], user)
		return out
	}
	waiting := make([]*fwdEntry, len(parts))
	local := 0
	for i := range parts {
		if in.groups[parts[i].g].IsLeader() {
			local++
			continue
		}
		waiting[i] = in.fwd[parts[i].g].submit(&fwdEntry{part: &parts[i].part, user: user})
	}
	var wg sync.WaitGroup
	for i := range parts {
		if waiting[i] != nil {
			continue
		}
		if local--; local == 0 {
			out[i] = in.one(ctx, parts[i], user)
			break
		}
		wg.Go(func() { out[i] = in.one(ctx, parts[i], user) })
	}
	for i, e := range waiting {
		if e != nil {
			out[i] = in.await(ctx, parts[i].g, e)[0]
		}
	}
	wg.Wait()
	return out
}

// one commits one group's part: locally when this node leads the group, else on the leader.
func (in *ingester) one(ctx context.Context, p groupPart, user string) partResult {
	grp := in.groups[p.g]
	if grp.IsLeader() {
		res, err := grp.Ingest(ctx, []fsm.Part{p.part})
		if err == nil {
			return appliedResult(p.g, res.Index, len(p.part.Events), res.Parts[0])
		}
		if !errors.Is(err, raftnode.ErrNotLeader) {
			return errResult(p.g, err)
		}
	}
	e := in.fwd[p.g].submit(&fwdEntry{part: &p.part, user: user})
	return in.await(ctx, p.g, e)[0]
}

// forwardRaw passes a request this node cannot decode to the leader of g, which decodes it
// (and splits it over the groups when split is set).
func (in *ingester) forwardRaw(ctx context.Context, g int, split bool, raw rawRequest, user string) []partResult {
	e := in.fwd[g].submit(&fwdEntry{raw: &raw, split: split, user: user})
	res := in.await(ctx, g, e)
	if !split && len(res) == 1 {
		res[0].whole = true
	}
	return res
}

// maxForwardTries bounds how often a part is sent to a node that answers it does not lead
// the group (nothing was proposed): the leader is looked up again between tries.
const maxForwardTries = 3

// await waits for a forwarded entry's results, sending it again (to the leader looked up
// anew) while the node it reached answers that it does not lead the group.
func (in *ingester) await(ctx context.Context, g int, e *fwdEntry) []partResult {
	for try := 1; ; try++ {
		var res []partResult
		select {
		case res = <-e.done:
		case <-ctx.Done():
			// The part may still be applied by the leader.
			pr := failed(g, codeUnavailable, fmt.Sprintf("forwarding to the leader of group %d: %v; retry with the same Producer-Id and Producer-Seq", g, ctx.Err()))
			pr.whole = e.raw != nil
			return []partResult{pr}
		}
		if try >= maxForwardTries || !notLeader(res) {
			return res
		}
		select {
		case <-time.After(time.Duration(try) * forwardPause):
		case <-ctx.Done():
		}
		e = in.fwd[g].submit(&fwdEntry{part: e.part, raw: e.raw, split: e.split, user: e.user})
	}
}

// notLeader reports whether an entry's results say the node asked did not lead the group.
func notLeader(res []partResult) bool {
	return len(res) == 1 && res[0].code == codeNotLeader
}
