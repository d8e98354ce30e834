package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Call sends one request of the HTTP API and returns the answer's body as the node sent
// it: for an endpoint this package has no method for, or for a caller that shows the
// server's JSON unchanged. path is the endpoint's path ("/v1/cluster/status"), query its
// parameters (may be nil); body, when not nil, is sent with Content-Type contentType.
// Like every call it starts at the next node round robin and fails over to the others
// on network errors and 503, so it is for requests that are safe to send twice (reads,
// deploys, leadership transfers), not for ingest without a producer (use Ingest).
func (c *Client) Call(ctx context.Context, method, path string, query url.Values, contentType string, body []byte) ([]byte, error) {
	h := http.Header{"Accept": {"application/json"}}
	if body != nil && contentType != "" {
		h.Set("Content-Type", contentType)
	}
	resp, err := c.do(ctx, &request{method: method, path: path, query: query, header: h, body: body})
	if err != nil {
		return nil, err
	}
	return resp.body, nil
}

// TransferResult is the answer to Transfer: the group and its new leader.
type TransferResult struct {
	Group  int    `json:"group"`
	Leader string `json:"leader"`
}

// Transfer hands the leadership of partition group group to the voter with ID to
// (POST /v1/cluster/transfer) and returns the new leader. A group below 0 means the only
// group of a cluster of one; an empty to lets Raft pick the most up-to-date voter.
func (c *Client) Transfer(ctx context.Context, group int, to string) (*TransferResult, error) {
	q := url.Values{}
	if group >= 0 {
		q.Set("group", strconv.Itoa(group))
	}
	if to != "" {
		q.Set("to", to)
	}
	resp, err := c.do(ctx, &request{method: http.MethodPost, path: "/v1/cluster/transfer", query: q, header: http.Header{"Accept": {"application/json"}}})
	if err != nil {
		return nil, fmt.Errorf("transfer the leadership of group %d: %w", group, err)
	}
	var res TransferResult
	if err := decode(resp, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
