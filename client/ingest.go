package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// PartResult is one group's part of an ingest request.
type PartResult struct {
	Group uint32 `json:"group"`
	// Index is the Raft index of the group's entry that carried the part.
	Index     uint64 `json:"index"`
	Events    int    `json:"events"`
	Duplicate bool   `json:"duplicate"`
	Status    int    `json:"status"`
	Error     string `json:"error,omitempty"`
}

// IngestResult is a node's answer to an ingest request.
type IngestResult struct {
	// Group and Index are the first part's (the only one with one group).
	Group  uint32 `json:"group"`
	Index  uint64 `json:"index"`
	Events int    `json:"events"`
	// Duplicate is set when every part had been applied before (same Producer-Id and
	// Producer-Seq): nothing was applied again.
	Duplicate bool `json:"duplicate"`
	// Parts has every group's part when the cluster has several groups.
	Parts []PartResult `json:"parts,omitempty"`
}

// Indexes returns where each group's part was committed, for QueryOptions.MinIndex.
func (r *IngestResult) Indexes() Indexes {
	if len(r.Parts) == 0 {
		return Indexes{r.Group: r.Index}
	}
	ix := Indexes{}
	for _, p := range r.Parts {
		if p.Index > 0 {
			ix[p.Group] = max(ix[p.Group], p.Index)
		}
	}
	return ix
}

// IngestOptions are the options of Ingest.
type IngestOptions struct {
	// ProducerID and Seq make the request idempotent: the cluster applies a producer's seq
	// once, however often it is sent. Both or neither; Seq starts at 1.
	ProducerID string
	Seq        uint64
}

// Ingest sends events (JSON objects, see Publisher.Add) to stream in one request, on the
// next node round robin. With a ProducerID it fails over to the other nodes on network
// errors and 503 (each tried once); without one it makes a single attempt, since another
// could apply the events twice. A Publisher batches and retries for you; Ingest is for
// callers that need each request's outcome. When no node answered, or one answered 503,
// the outcome is unknown: with a producer, send the same events again with the same
// ProducerID and Seq.
func (c *Client) Ingest(ctx context.Context, stream string, events []any, opts IngestOptions) (*IngestResult, error) {
	if (opts.ProducerID == "") != (opts.Seq == 0) {
		return nil, errors.New("client: ingest: give ProducerID and Seq together, or neither")
	}
	if len(events) == 0 {
		return nil, errors.New("client: ingest: no events")
	}
	raws := make([]json.RawMessage, len(events))
	for i, e := range events {
		raw, err := marshalEvent(e)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		raws[i] = raw
	}
	return c.ingest(ctx, stream, ingestRequest("/v1/streams/"+url.PathEscape(stream)+"/events", raws, opts.ProducerID, opts.Seq), opts)
}

// IngestNDJSON is Ingest of events already encoded as NDJSON: body holds one JSON object
// per line and is sent as it is (the server checks it and names a refused event by its
// line, from 0). It is for callers that produce NDJSON themselves, such as a load
// generator. body is not copied: do not change it afterwards.
func (c *Client) IngestNDJSON(ctx context.Context, stream string, body []byte, opts IngestOptions) (*IngestResult, error) {
	if (opts.ProducerID == "") != (opts.Seq == 0) {
		return nil, errors.New("client: ingest: give ProducerID and Seq together, or neither")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("client: ingest: no events")
	}
	h := http.Header{"Content-Type": {"application/x-ndjson"}, "Accept": {"application/json"}}
	if opts.ProducerID != "" {
		h.Set("Producer-Id", opts.ProducerID)
		h.Set("Producer-Seq", strconv.FormatUint(opts.Seq, 10))
	}
	return c.ingest(ctx, stream, &request{method: http.MethodPost, path: "/v1/streams/" + url.PathEscape(stream) + "/events", body: body, header: h}, opts)
}

// ingest sends the ingest request r: with a producer through do (failing over), without
// one to a single node.
func (c *Client) ingest(ctx context.Context, stream string, r *request, opts IngestOptions) (*IngestResult, error) {
	var resp *response
	var err error
	if opts.ProducerID != "" {
		resp, err = c.do(ctx, r)
	} else {
		// Without a producer a second attempt could apply the events twice.
		i := c.pick()
		if resp, err = c.send(ctx, c.nodes[i], r); err != nil {
			c.noteFailure(i, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ingest into %s: %w", stream, err)
	}
	var res IngestResult
	if err := decode(resp, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// ingestRequest is a POST of events as NDJSON, with the producer's headers when id is set.
func ingestRequest(path string, events []json.RawMessage, id string, seq uint64) *request {
	n := 0
	for _, e := range events {
		n += len(e) + 1
	}
	body := make([]byte, 0, n)
	for _, e := range events {
		body = append(append(body, e...), '\n')
	}
	h := http.Header{"Content-Type": {"application/x-ndjson"}, "Accept": {"application/json"}}
	if id != "" {
		h.Set("Producer-Id", id)
		h.Set("Producer-Seq", strconv.FormatUint(seq, 10))
	}
	return &request{method: http.MethodPost, path: path, body: body, header: h}
}
